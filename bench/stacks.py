"""Reads `perf script` output of bench/profile.sh.

    stacks.py <file> incl [N]              the N frames with the most samples at or below them (default 60)
    stacks.py <file> under REGEX [depth]   of the samples below the outermost frame matching REGEX, which frame
                                           is `depth` levels below it ("(self)": the sample ended above that depth)
Frame names lose their offsets, JIT tier tags and assembly prefixes, so one method is one name across tiers.
"""
import collections
import re
import signal
import sys


def load(path):
    samples, current = [], []
    for line in open(path, errors='replace'):
        line = line.rstrip('\n')
        if not line.strip():
            if current:
                samples.append(current)
                current = []
            continue
        if line[0] not in ' \t':
            current = []
            continue
        parts = line.strip().split(' ', 1)
        name = parts[1] if len(parts) > 1 else parts[0]
        name = re.sub(r'\s*\([^)]*\)$', '', name)
        name = re.sub(r'\[Optimized[^\]]*\]|\[Tier[^\]]*\]|\[QuickJitted\]|\[PreJIT\]|\[Instrumented[^\]]*\]', '', name)
        name = re.sub(r'^instance |^static ', '', name)
        name = re.sub(r'\+0x[0-9a-f]+$', '', name)
        name = re.sub(r'\[[A-Za-z0-9_.]+\] ', '', name)
        current.append(name[:200])
    if current:
        samples.append(current)
    return samples


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # piped into head: stop quietly
    samples = load(sys.argv[1])
    total = len(samples)
    mode = sys.argv[2] if len(sys.argv) > 2 else 'incl'
    counts = collections.Counter()
    if mode == 'incl':
        for stack in samples:
            counts.update(set(stack))
        shown = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    elif mode == 'under':
        pattern = re.compile(sys.argv[3])
        depth = int(sys.argv[4]) if len(sys.argv) > 4 else 1
        below = 0
        for stack in samples:
            matches = [i for i, frame in enumerate(stack) if pattern.search(frame)]
            if not matches:
                continue
            below += 1
            at = matches[-1] - depth  # perf lists the leaf first: the outermost match is the last
            counts[stack[at] if at >= 0 else '(self)'] += 1
        print(f'{100 * below / total:.2f}% of {total} samples under {sys.argv[3]}')
        shown = 40
    else:
        sys.exit(__doc__)
    for frame, count in counts.most_common(shown):
        print(f'{100 * count / total:6.2f}% {frame}')


if __name__ == '__main__':
    main()

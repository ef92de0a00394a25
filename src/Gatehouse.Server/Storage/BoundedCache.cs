using Microsoft.Extensions.Caching.Memory;

namespace Gatehouse.Server.Storage;

/// <summary>
/// At most about <c>capacity</c> entries in memory. Full, it lets the least recently used quarter go in one compaction
/// on the thread pool, one at a time, and does not keep what arrives meanwhile. Not MemoryCache's own size limit: that
/// queued a compaction for every entry it turned away, and under steady churn at capacity (a node ending thousands of
/// sessions a second, or signing a token for every login) several ran at once, each sorting every entry
/// (docs/benchmarks.md, changes 47 and 48).
/// </summary>
internal sealed class BoundedCache<TKey, TValue>(int capacity) : IDisposable
    where TKey : notnull
    where TValue : class
{
    private readonly MemoryCache _entries = new(new MemoryCacheOptions());

    /// <summary>Entries added, set to the true count after each compaction (expiries only make it early).</summary>
    private int _added;

    private int _compacting;

    public bool TryGet(TKey key, out TValue? value) => _entries.TryGetValue(key, out value);

    /// <param name="expires">When the entry stops being served, if ever.</param>
    public void Set(TKey key, TValue value, DateTimeOffset? expires = null)
    {
        // A replaced entry (a session read again after its refresh) does not add one: counted, steady refreshes
        // alone would run compactions and keep fresh values out.
        if (!_entries.TryGetValue(key, out _) && Interlocked.Increment(ref _added) > capacity)
        {
            if (Interlocked.CompareExchange(ref _compacting, 1, 0) == 0)
                ThreadPool.UnsafeQueueUserWorkItem(static cache => cache.Compact(), this, preferLocal: false);
            return;
        }
        if (expires is { } at)
            _entries.Set(key, value, at);
        else
            _entries.Set(key, value);
    }

    private void Compact()
    {
        try
        {
            _entries.Compact(0.25);
            Volatile.Write(ref _added, _entries.Count);
        }
        catch (ObjectDisposedException)
        {
            // The node stopped while this was queued; an exception here would end the process.
        }
        finally
        {
            Volatile.Write(ref _compacting, 0);
        }
    }

    /// <summary>How many entries are kept now (for the tests).</summary>
    internal int Count => _entries.Count;

    public void Dispose() => _entries.Dispose();
}

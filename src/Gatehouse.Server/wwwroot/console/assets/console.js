// The console works without script; this only adds the copy buttons' clipboard write, folds the navigation on a
// phone, and keeps the keyboard in an open dialog: Tab cycles inside it, and Escape leaves it the way its Cancel (or
// Done) link does.
const menu = document.querySelector('details.nav-menu');
if (menu && window.matchMedia('(max-width: 720px)').matches) menu.open = false;

document.addEventListener('click', (event) => {
  const button = event.target.closest('[data-copy]');
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  const done = () => {
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = 'Copy'; }, 2000);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => selectText(source));
  } else {
    selectText(source);
  }
});

function selectText(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

document.addEventListener('keydown', (event) => {
  const dialog = document.querySelector('dialog.modal[open]');
  if (!dialog) return;
  if (event.key === 'Escape') {
    const leave = [...dialog.querySelectorAll('a.button')].pop();
    if (leave) {
      event.preventDefault();
      leave.click();
    }
    return;
  }
  if (event.key !== 'Tab') return;
  const focusable = [...dialog.querySelectorAll('a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled])')];
  if (focusable.length === 0) return;
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  if (!dialog.contains(document.activeElement)) {
    event.preventDefault();
    first.focus();
  } else if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
});

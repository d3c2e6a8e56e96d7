// The GOV.UK error pattern: after a form comes back with errors, the error summary takes the focus,
// so that a screen reader reads it first and the keyboard starts from its links to the fields.
document.addEventListener('DOMContentLoaded', function () {
  const summary = document.querySelector('[data-error-summary]')
  if (summary) {
    summary.focus()
  }
})

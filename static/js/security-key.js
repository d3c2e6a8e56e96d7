// allauth's WebAuthn script reports a failed or cancelled ceremony as an "allauth.error" event and
// otherwise only logs it: show the page's own message instead, and let a screen reader announce it.
document.addEventListener('allauth.error', function (event) {
  const message = document.getElementById('security-key-error')
  if (message) {
    event.preventDefault()
    message.hidden = false
  }
})

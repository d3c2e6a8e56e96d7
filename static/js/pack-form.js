// The auditor pack form: offer only the chosen guideline's versions. Without this script every
// guideline's versions are listed, grouped by guideline, and the server refuses a mismatch.
document.addEventListener('DOMContentLoaded', function () {
  const guideline = document.getElementById('id_guideline')
  const version = document.getElementById('id_version')
  if (!guideline || !version) {
    return
  }
  function offerTheChosenGuidelinesVersions () {
    for (const group of version.querySelectorAll('optgroup')) {
      const first = group.querySelector('option[data-guideline]')
      const belongs = first !== null && first.dataset.guideline === guideline.value
      group.hidden = !belongs
      group.disabled = !belongs
    }
    const chosen = version.options[version.selectedIndex]
    if (chosen && chosen.parentNode.disabled) {
      version.value = ''
    }
  }
  guideline.addEventListener('change', offerTheChosenGuidelinesVersions)
  offerTheChosenGuidelinesVersions()
})

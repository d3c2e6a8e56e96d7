// The guideline settings: when everyone must acknowledge, the department and group choices do not
// apply, so they are hidden (and not posted). Without this script they stay visible and make no
// difference while "everyone" is ticked.
document.addEventListener('DOMContentLoaded', function () {
  const everyone = document.getElementById('id_audience_everyone')
  if (!everyone) {
    return
  }
  const choices = ['id_audience_departments', 'id_audience_groups']
    .map(function (id) { return document.getElementById(id) })
    .filter(Boolean)
    .map(function (element) { return element.closest('.field') })
  function showTheChoicesThatApply () {
    for (const field of choices) {
      field.hidden = everyone.checked
      for (const input of field.querySelectorAll('input')) {
        input.disabled = everyone.checked
      }
    }
  }
  everyone.addEventListener('change', showTheChoicesThatApply)
  showTheChoicesThatApply()
})

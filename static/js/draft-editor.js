// Live preview for the draft editor: the server renders and sanitises the Markdown, so the
// preview shows exactly what employees will see. Works without this script too (save, then view).
(function () {
  "use strict";
  var form = document.querySelector("form.draft-editor");
  if (!form) return;
  var url = form.getAttribute("data-preview-url");
  var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  function refresh(textarea) {
    var target = document.getElementById(textarea.getAttribute("data-preview-target"));
    var body = new URLSearchParams();
    body.append("body", textarea.value);
    fetch(url, {method: "POST", body: body, headers: {"X-CSRFToken": token}, credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) { target.innerHTML = html; })
      .catch(function () { /* keep the last good preview */ });
  }

  form.querySelectorAll("textarea[data-preview-target]").forEach(function (textarea) {
    var timer = null;
    textarea.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { refresh(textarea); }, 300);
    });
    refresh(textarea);
  });
})();

// Webhook pages: the Copy button beside a secret. A button with data-copy="#field" copies that field's value
// to the clipboard and says so in its status line; where the clipboard is refused it selects the text instead.
// Delegated from the document, so a secret swapped in by htmx (Rotate secret) works too. No inline scripts (CSP).
(function () {
  "use strict";
  if (window.portalCopyButtons) { return; }  // loaded once per page, whatever htmx swaps in
  window.portalCopyButtons = true;

  function say(button, text) {
    var status = document.getElementById(button.getAttribute("aria-describedby"));
    if (status) { status.textContent = text; }
  }

  function selectField(field) {
    field.focus();
    field.select();
    field.setSelectionRange(0, field.value.length);
  }

  function copy(button) {
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) { return; }
    var copied = button.getAttribute("data-copied");
    var failed = button.getAttribute("data-copy-failed");
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () { say(button, copied); }, function () {
        selectField(field);
        say(button, failed);
      });
      return;
    }
    selectField(field);
    var done = false;
    try { done = document.execCommand("copy"); } catch (error) { done = false; }
    say(button, done ? copied : failed);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) { copy(button); }
  });
}());

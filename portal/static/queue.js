// The work queue's scan box: after a scan that found nothing, the field (swapped in out of band with its message)
// gets focus back with the scanned text selected, so the next scan replaces it; typing clears the message.
(function () {
  "use strict";

  function scanField() { return document.getElementById("search"); }

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id !== "scan-field") { return; }
    var field = scanField();
    if (!field) { return; }
    field.focus();
    field.select();
  });

  document.addEventListener("input", function (event) {
    var field = event.target;
    if (!field || field.id !== "search" || field.getAttribute("aria-invalid") !== "true") { return; }
    field.removeAttribute("aria-invalid");
    field.removeAttribute("aria-describedby");
    var message = document.getElementById("scan-error");
    if (message) { message.remove(); }
  });
}());

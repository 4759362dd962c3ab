// The pickup shelf box: right after Ready for Customer Pickup the panel comes back with the slot's scan field,
// which takes the focus so that the next scan (the slot's label) lands in it. No inline scripts (CSP).
(function () {
  "use strict";

  function focusShelf(root) {
    if (document.querySelector("dialog[open]")) { return; }  // the handover dialog keeps its code field
    var field = (root || document).querySelector("[data-shelf-focus]");
    if (field && document.activeElement !== field) { field.focus(); }
  }

  document.addEventListener("htmx:afterSettle", function (event) { focusShelf(event.target); });
  document.addEventListener("DOMContentLoaded", function () { focusShelf(document); });
}());

// The counter's handover: the code's digit cells, and after a delivery the full-screen "Delivered to" and back
// to the scan box. No inline scripts: the CSP allows only files from 'self'.
(function () {
  "use strict";

  var DELIVERED_MS = 1800;

  function fillCells(field) {
    // The cells mirror the one real field: a scanner or a keyboard types into the field, the cells show it.
    var cells = field.form && field.form.querySelector("[data-otp-cells]");
    if (!cells) { return; }
    var digits = field.value;
    Array.prototype.forEach.call(cells.children, function (cell, index) {
      cell.textContent = digits.charAt(index);
      cell.classList.toggle("otp-cell-filled", index < digits.length);
      cell.classList.toggle("otp-cell-next", index === digits.length && document.activeElement === field);
    });
  }

  document.addEventListener("input", function (event) {
    var field = event.target;
    if (field.id !== "otp") { return; }
    // A paste or a scan may bring spaces or dashes: keep the digits only.
    var digits = field.value.replace(/\D+/g, "");
    if (digits !== field.value) { field.value = digits; }
    fillCells(field);
  });

  ["focusin", "focusout"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      if (event.target.id === "otp") { fillCells(event.target); }
    });
  });

  document.addEventListener("click", function (event) {
    // Tapping the cells puts the cursor into the field (and the on-screen keypad up).
    var cells = event.target.closest("[data-otp-cells]");
    if (!cells || !cells.form) { return; }
    var field = cells.form.querySelector("#otp");
    if (field && !field.disabled) { field.focus(); }
  });

  function backToScanBox(overlay) {
    if (overlay.hasAttribute("data-leaving")) { return; }
    overlay.setAttribute("data-leaving", "");
    // The home's scan box has autofocus: a fresh load puts the cursor there, ready for the next customer.
    setTimeout(function () { window.location.assign(overlay.getAttribute("data-home")); }, DELIVERED_MS);
  }

  function settle(root) {
    var field = root.querySelector ? root.querySelector("#otp") : null;
    if (field) { fillCells(field); }
    var overlay = document.getElementById("delivered-overlay");
    if (overlay) { backToScanBox(overlay); }
  }

  document.addEventListener("htmx:load", function (event) { settle(event.detail.elt); });
  document.addEventListener("htmx:afterSettle", function (event) { settle(event.detail.target || document); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { settle(document); });
  } else {
    settle(document);
  }
})();

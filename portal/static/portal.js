// Small behaviours of the portal's pages. No inline scripts: the CSP allows only files from 'self'.
(function () {
  "use strict";

  function modal() { return document.getElementById("modal"); }

  function showToast(message, level) {
    var box = document.getElementById("toasts");
    if (!box || !message) { return; }
    var toast = document.createElement("p");
    toast.className = "toast toast-" + (level || "success");
    toast.setAttribute("role", level === "error" ? "alert" : "status");
    toast.textContent = message;
    box.appendChild(toast);
    setTimeout(function () { toast.remove(); }, level === "error" ? 8000 : 4000);
  }

  function focusFirst(container) {
    var field = container.querySelector("[autofocus]") || container.querySelector("input, select, textarea, button");
    if (field) { field.focus(); if (field.select) { field.select(); } }
  }

  function openModal() {
    var dialog = modal();
    if (!dialog) { return; }
    if (!dialog.open) { dialog.showModal(); }
    focusFirst(dialog);
  }

  function closeModal() {
    var dialog = modal();
    if (dialog && dialog.open) { dialog.close(); }
  }

  document.addEventListener("toast", function (event) {
    showToast(event.detail.message, event.detail.level);
  });
  document.addEventListener("close-modal", closeModal);

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "modal-content") {
      if (target.querySelector("form")) { openModal(); } else { closeModal(); }
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    // After the list refreshes, keep focus where a scanner expects it.
    var search = document.getElementById("search");
    if (search && event.detail.target && event.detail.target.id === "package-table" && !document.activeElement.matches("input, select, textarea")) {
      search.focus();
    }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    // Do not refresh the list behind an open dialog or in a hidden tab.
    var elt = event.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-auto-refresh")) {
      var dialog = modal();
      if (document.hidden || (dialog && dialog.open)) { event.preventDefault(); }
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    showToast(status === 403 ? "You may not do that." : status === 404 ? "That package is not in your store." :
      "Something went wrong. Please try again.", "error");
  });
  document.addEventListener("htmx:sendError", function () {
    showToast("No connection to the portal. Check the network and try again.", "error");
  });

  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-modal]");
    if (closer) { event.preventDefault(); closeModal(); }
    var after = event.target.closest("[data-close-modal-after]");
    if (after) { setTimeout(closeModal, 0); }
  });

  document.addEventListener("keydown", function (event) {
    // A scanner types the barcode and presses Enter: move to the next item instead of submitting early.
    var field = event.target;
    if (event.key !== "Enter" || !field.matches || !field.matches("[data-scan-next]")) { return; }
    var fields = Array.prototype.slice.call(field.form.querySelectorAll("[data-scan-next]"));
    var index = fields.indexOf(field);
    var next = fields.slice(index + 1).concat(fields.slice(0, index)).find(function (f) { return !f.value; });
    if (next) { event.preventDefault(); next.focus(); }
  });

  function init() {
    var dialog = modal();
    if (dialog) {
      dialog.addEventListener("close", function () {
        document.getElementById("modal-content").innerHTML = "";
      });
    }
    var opener = document.querySelector("[data-open-modal]");
    if (opener && window.htmx) {
      window.htmx.ajax("GET", opener.getAttribute("data-open-modal"), { target: "#modal-content", swap: "innerHTML" });
    }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
  document.addEventListener("htmx:load", function (event) {
    // Boosted navigation swaps the body: look for a modal to open on the new page.
    if (event.detail.elt === document.body) { init(); }
  });
})();

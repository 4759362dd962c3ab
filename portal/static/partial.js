// Partial pickup in the handover dialog: mark the refused lines, show the full-refusal confirmation when every
// unit is refused, and say on the confirm button what it will do. No inline scripts: the CSP allows files only.
(function () {
  "use strict";

  function refusedUnits(line) {
    // 0 when the customer takes the line; else the units refused (the whole line without a units field).
    var chosen = line.querySelector("input[type=radio]:checked");
    if (!chosen || !chosen.value) { return 0; }
    var units = line.querySelector("[data-refuse-units]");
    return units ? Number(units.value) : Infinity;
  }

  function update(box) {
    var lines = box.querySelectorAll("[data-refuse-line]");
    var any = false;
    var all = lines.length > 0;
    Array.prototype.forEach.call(lines, function (line) {
      var count = refusedUnits(line);
      var units = line.querySelector("[data-refuse-units]");
      var whole = count === Infinity || (units && count >= Number(units.max));
      line.classList.toggle("refuse-line-refused", count > 0);
      if (count > 0) { any = true; }
      if (!(count > 0 && whole)) { all = false; }
    });
    var confirmBlock = box.querySelector("[data-refuse-all]");
    if (confirmBlock) {
      confirmBlock.hidden = !all;
      if (!all) {
        var tick = confirmBlock.querySelector("input[type=checkbox]");
        if (tick) { tick.checked = false; }
      }
    }
    var form = box.closest("form");
    var submit = form && form.querySelector("button[type=submit]");
    if (submit) {
      if (!submit.hasAttribute("data-label-deliver")) { submit.setAttribute("data-label-deliver", submit.textContent); }
      submit.textContent = all ? box.getAttribute("data-label-full")
        : any ? box.getAttribute("data-label-partial") : submit.getAttribute("data-label-deliver");
    }
  }

  function boxOf(element) {
    return element && element.closest ? element.closest("[data-refuse-lines]") : null;
  }

  ["change", "input"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var box = boxOf(event.target);
      if (box) { update(box); }
    });
  });

  function settle(root) {
    if (!root || !root.querySelectorAll) { return; }
    var boxes = root.matches && root.matches("[data-refuse-lines]") ? [root] : root.querySelectorAll("[data-refuse-lines]");
    Array.prototype.forEach.call(boxes, update);
  }

  document.addEventListener("htmx:load", function (event) { settle(event.detail.elt); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { settle(document); });
  } else {
    settle(document);
  }
})();

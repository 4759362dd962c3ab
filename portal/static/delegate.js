/* The delegate form (packages/_delegate_form.html): unfolding the form puts the cursor in the name field,
   and Enter in the name field moves on to the phone number instead of sending a half-filled form. */
(function () {
  "use strict";

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details || details.id !== "delegate-details" || !details.open) { return; }
    var name = document.getElementById("delegate-name");
    if (name && !name.value) { name.focus(); }
  }, true);

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !event.target || event.target.id !== "delegate-name") { return; }
    var phone = document.getElementById("delegate-phone");
    if (phone && event.target.value.trim()) {
      event.preventDefault();
      phone.focus();
    }
  });
})();

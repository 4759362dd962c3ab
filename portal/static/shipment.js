// The label page's Print button: print the framed PDF label, or the page when the browser cannot reach the frame.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-print-label]");
  if (!button) {
    return;
  }
  event.preventDefault();
  const frame = document.getElementById(button.dataset.printLabel);
  try {
    frame.contentWindow.focus();
    frame.contentWindow.print();
  } catch (error) {
    window.print();
  }
});

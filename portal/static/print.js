// Print buttons on the pick list and the packing slip: the browser's print dialog makes the paper (print.css).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-print]");
  if (button) {
    event.preventDefault();
    window.print();
  }
});

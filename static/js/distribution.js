// Token Distribution: an answer replaces only its own section; bring what it says (the
// message, or else the preview) into view and focus it, so a screen reader reads it and the
// admin sees it without scrolling, at any width.
(function () {
  "use strict";

  function reveal(section) {
    const message = section.querySelector("[data-feedback] .message");
    const result = message || section.querySelector("[data-result]");
    if (!result) return;
    result.scrollIntoView({ block: "nearest" });
    result.focus({ preventScroll: true });
  }

  document.addEventListener("htmx:afterSettle", (event) => {
    const target = event.detail.target;
    if (!(target instanceof Element)) return;
    // outerHTML swaps: the target is the old node; find its replacement by id.
    const section = target.id ? document.getElementById(target.id) : null;
    if (section && section.classList.contains("dist-section")) reveal(section);
  });
})();

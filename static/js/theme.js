// Runs in <head> before the stylesheet paints: a theme chosen earlier (light or dark) is pinned
// on <html> at once, so the page never flashes the other theme. No choice: follow the system.
(function () {
  "use strict";
  let theme = null;
  try { theme = window.localStorage.getItem("theme"); } catch (error) { /* storage blocked */ }
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
})();

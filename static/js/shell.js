// The app shell: the account menu and the slide-out drawer below 1200px.
(function () {
  "use strict";
  const shell = document.querySelector("[data-shell]");
  if (!shell) return;
  const openButton = shell.querySelector("[data-drawer-open]");
  const backdrop = shell.querySelector(".backdrop");
  const sidebar = document.getElementById("sidebar");

  function setDrawer(open) {
    shell.classList.toggle("drawer-open", open);
    backdrop.hidden = !open;
    openButton.setAttribute("aria-expanded", String(open));
    if (open) {
      const first = sidebar.querySelector("nav a, button");
      if (first) first.focus();
    }
  }
  function drawerOpen() { return shell.classList.contains("drawer-open"); }

  openButton.addEventListener("click", () => setDrawer(!drawerOpen()));
  backdrop.addEventListener("click", () => { setDrawer(false); openButton.focus(); });
  sidebar.addEventListener("click", (event) => {
    if (event.target.closest("nav a") && drawerOpen()) setDrawer(false);
  });

  const menuButton = shell.querySelector("[data-menu-button]");
  const menu = shell.querySelector("[data-menu]");
  function setMenu(open) {
    if (!menu) return;
    menu.hidden = !open;
    menuButton.setAttribute("aria-expanded", String(open));
    if (open) {
      const first = menu.querySelector("a, button");
      if (first) first.focus();
    }
  }
  if (menuButton) {
    menuButton.addEventListener("click", () => setMenu(menu.hidden));
    document.addEventListener("click", (event) => {
      if (!menu.hidden && !event.target.closest(".account")) setMenu(false);
    });
  }

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (menu && !menu.hidden) { setMenu(false); menuButton.focus(); return; }
    if (drawerOpen()) { setDrawer(false); openButton.focus(); }
  });
  // Leaving the narrow layout must not leave the page behind a backdrop.
  window.matchMedia("(min-width: 1200px)").addEventListener("change", (mq) => {
    if (mq.matches) setDrawer(false);
  });
})();

// The app shell: the account menu, the slide-out drawer below 1200px, the theme switch and
// the busy state of regions htmx is updating.
(function () {
  "use strict";

  // Busy: htmx shows #busy (hx-indicator on <body>, visible after 200 ms in CSS); the region
  // being replaced says so to assistive technology until its answer has arrived.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const target = event.detail.target;
    if (target instanceof Element && target !== document.body) target.setAttribute("aria-busy", "true");
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    const target = event.detail.target;
    if (target instanceof Element) target.removeAttribute("aria-busy");
  });

  // Theme: light, dark or the system's; theme.js applies the remembered choice before paint.
  const themeSwitch = document.querySelector("[data-theme-switch]");
  if (themeSwitch) {
    let stored = null;
    try { stored = window.localStorage.getItem("theme"); } catch (error) { /* storage blocked */ }
    const current = stored === "light" || stored === "dark" ? stored : "system";
    const radio = themeSwitch.querySelector(`input[value="${current}"]`);
    if (radio) radio.checked = true;
    themeSwitch.hidden = false;
    themeSwitch.addEventListener("change", (event) => {
      const value = event.target.value;
      try {
        if (value === "system") window.localStorage.removeItem("theme");
        else window.localStorage.setItem("theme", value);
      } catch (error) { /* storage blocked: the choice lasts for this page */ }
      if (value === "light" || value === "dark") document.documentElement.dataset.theme = value;
      else delete document.documentElement.dataset.theme;
    });
  }

  // Copy: a button with data-copy="<input id>" copies that field (the new API key) and says so
  // in the status next to it; where the clipboard is refused it selects the text instead.
  document.addEventListener("click", async (event) => {
    const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    const field = document.getElementById(button.dataset.copy);
    const status = document.querySelector(`[data-copy-status="${button.dataset.copy}"]`);
    if (!field) return;
    try {
      await navigator.clipboard.writeText(field.value);
      if (status) status.textContent = "Copied to the clipboard.";
    } catch (error) {
      field.focus();
      field.select();
      if (status) status.textContent = "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
    }
  });

  const shell = document.querySelector("[data-shell]");
  if (!shell) return;
  const openButton = shell.querySelector("[data-drawer-open]");
  const backdrop = shell.querySelector(".backdrop");
  const sidebar = document.getElementById("sidebar");
  const content = shell.querySelector(".content");

  // The open drawer is modal: the page behind it is inert and Tab cycles inside the drawer.
  function setDrawer(open) {
    shell.classList.toggle("drawer-open", open);
    backdrop.hidden = !open;
    openButton.setAttribute("aria-expanded", String(open));
    if (content) content.inert = open;
    if (open) {
      const first = sidebar.querySelector("nav a, button");
      if (first) first.focus();
    }
  }
  function drawerOpen() { return shell.classList.contains("drawer-open"); }
  function focusables() {
    return Array.from(sidebar.querySelectorAll("a[href], button, input, select, textarea, [tabindex]"))
      .filter((el) => !el.disabled && el.tabIndex >= 0 && el.getClientRects().length > 0
        && !(el.type === "radio" && !el.checked && el.name && sidebar.querySelector(`input[name="${el.name}"]:checked`)));
  }

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
    if (event.key === "Tab" && drawerOpen()) {
      const items = focusables();
      if (!items.length) return;
      const first = items[0];
      const last = items[items.length - 1];
      const inside = sidebar.contains(document.activeElement);
      if (event.shiftKey && (document.activeElement === first || !inside)) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
        event.preventDefault();
        first.focus();
      }
      return;
    }
    if (event.key !== "Escape") return;
    if (menu && !menu.hidden) { setMenu(false); menuButton.focus(); return; }
    if (drawerOpen()) { setDrawer(false); openButton.focus(); }
  });
  // Leaving the narrow layout must not leave the page behind a backdrop.
  window.matchMedia("(min-width: 1200px)").addEventListener("change", (mq) => {
    if (mq.matches) setDrawer(false);
  });
})();

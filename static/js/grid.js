// User Management grid: inline editing, keyboard moves, announcements, leave-page warning.
// The server renders every cell state; this file only moves focus and wires keys to htmx.
(function () {
  "use strict";

  // 422 answers carry the cell editor with its error: swap them like a success.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "422", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
  ];

  const announcer = () => document.getElementById("announcer");
  function announce(text) {
    const el = announcer();
    if (!el || !text) return;
    el.textContent = "";
    window.setTimeout(() => { el.textContent = text; }, 30);
  }
  document.body.addEventListener("announce", (event) => announce(event.detail.text));

  // Editing: focus the new input with its text selected; Enter submits (native form),
  // Escape cancels, leaving the input (click outside, Tab) confirms.
  let restoreFocusTo = null;
  function openEditor(form) {
    const input = form.querySelector("input[name=value]");
    input.focus();
    input.select();
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        form.dataset.done = "cancel";
        restoreFocusTo = form.closest("[data-cell]").id;
        htmx.ajax("GET", form.dataset.cancelUrl, { target: form.closest("[data-cell]"), swap: "outerHTML" });
      } else if (event.key === "Enter") {
        restoreFocusTo = form.closest("[data-cell]").id;
      } else if (event.key === "Tab") {
        restoreFocusTo = null;
      }
    });
    input.addEventListener("blur", () => {
      if (form.dataset.done) return;
      window.setTimeout(() => {
        if (!form.isConnected || form.dataset.done) return;
        form.dataset.done = "blur";
        htmx.trigger(form, "submit");
      }, 0);
    });
    form.addEventListener("submit", () => { form.dataset.done = form.dataset.done || "submit"; });
    form.addEventListener("htmx:beforeRequest", () => { form.dataset.done = form.dataset.done || "submit"; });
  }

  document.body.addEventListener("htmx:afterSettle", (event) => {
    const target = event.detail.elt;
    if (!(target instanceof Element)) return;
    const form = target.matches("[data-cell-editor]") ? target : target.querySelector && target.querySelector("[data-cell-editor]");
    if (form && target.closest("[data-cell]")) { openEditor(form); return; }
    if (restoreFocusTo) {
      const cell = document.getElementById(restoreFocusTo);
      restoreFocusTo = null;
      const button = cell && cell.querySelector(".cell-value");
      if (button) button.focus();
    }
    updateSelectedCount();
  });
  // The editor a 422 brings back must be re-armed too.
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.xhr.status === 422) event.detail.shouldSwap = true;
  });

  // Keyboard moves between editable cells: arrows by row and column.
  function editableCells() { return Array.from(document.querySelectorAll("#users-grid .cell-value")); }
  document.addEventListener("keydown", (event) => {
    const current = event.target.closest && event.target.closest(".cell-value");
    if (!current) return;
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    const row = current.closest("tr");
    const rows = Array.from(document.querySelectorAll("#users-grid tbody tr"));
    const columns = ["max_inference_tokens", "max_embedding_tokens"];
    let r = rows.indexOf(row) + move[0];
    let c = columns.indexOf(current.dataset.column) + move[1];
    if (c < 0 || c >= columns.length) {
      const all = editableCells();
      const next = all[all.indexOf(current) + (move[1] > 0 ? 1 : -1)];
      if (next) next.focus();
      return;
    }
    if (r < 0 || r >= rows.length) return;
    const target = rows[r].querySelector(`.cell-value[data-column="${columns[c]}"]`);
    if (target) target.focus();
  });

  // Selection: "select all on this page" and the count in the bulk bar.
  function updateSelectedCount() {
    const counter = document.querySelector("[data-selected-count]");
    if (!counter) return;
    const n = document.querySelectorAll('#users-grid input[name="users"]:checked').length;
    if (!counter.dataset.total) counter.dataset.total = counter.textContent;
    counter.textContent = n ? `${n} selected` : counter.dataset.total;
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-select-page]")) {
      document.querySelectorAll('#users-grid input[name="users"]').forEach((box) => { box.checked = event.target.checked; });
    }
    if (event.target.matches('[data-select-page], #users-grid input[name="users"]')) updateSelectedCount();
  });

  // Unsaved pending edits: warn before leaving the page (htmx swaps are not unloads).
  window.addEventListener("beforeunload", (event) => {
    if (document.querySelector("[data-pending-column]")) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();

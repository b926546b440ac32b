// User Management grid: inline editing, keyboard moves, announcements, leave-page warning.
// The server renders every cell state; this file only moves focus and wires keys to htmx.
(function () {
  "use strict";

  // A 422 answer (the cell editor with its error) swaps like a success: base.html's
  // htmx-config says so for every page.

  const announcer = () => document.getElementById("announcer");
  function announce(text) {
    const el = announcer();
    if (!el || !text) return;
    el.textContent = "";
    window.setTimeout(() => { el.textContent = text; }, 30);
  }
  document.body.addEventListener("announce", (event) => announce(event.detail.text));

  // Editing. All handlers are delegated from the document, so an editor works the instant
  // it is in the page: Enter (the form's submit) and leaving the input confirm, Escape cancels.
  let restoreFocusTo = null;
  function commit(form, how) {
    if (form.dataset.done) return;
    form.dataset.done = how;
    const cell = form.closest("[data-cell]");
    restoreFocusTo = how === "blur" ? null : cell.id;
    htmx.ajax("POST", form.dataset.url, {
      source: form,
      target: cell,
      swap: "outerHTML",
      values: { value: form.elements.value.value, seen: form.elements.seen.value },
    });
  }
  document.addEventListener("submit", (event) => {
    const form = event.target.closest && event.target.closest("[data-cell-editor]");
    if (!form) return;
    event.preventDefault();
    commit(form, "enter");
  }, true);
  // The editable cells in reading order; Tab and Shift+Tab step through them.
  function neighbourCell(cell, step) {
    const cells = Array.from(document.querySelectorAll("#users-grid [data-cell]"));
    return cells[cells.indexOf(cell) + step] || null;
  }
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Tab" || event.altKey || event.ctrlKey || event.metaKey) return;
    const cell = event.target.closest && event.target.closest("#users-grid [data-cell]");
    if (!cell) return;
    const next = neighbourCell(cell, event.shiftKey ? -1 : 1);
    if (!next) return; // the first or last cell: Tab leaves the grid as usual
    event.preventDefault();
    const form = cell.querySelector("[data-cell-editor]");
    if (form) {
      commit(form, "tab"); // confirm, then continue in the next cell
      restoreFocusTo = next.id;
    } else {
      const button = next.querySelector(".cell-value");
      if (button) button.focus();
    }
  }, true);
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const form = event.target.closest && event.target.closest("[data-cell-editor]");
    if (!form || form.dataset.done) return;
    event.preventDefault();
    event.stopPropagation();
    form.dataset.done = "cancel";
    const cell = form.closest("[data-cell]");
    restoreFocusTo = cell.id;
    htmx.ajax("GET", form.dataset.cancelUrl, { source: form, target: cell, swap: "outerHTML" });
  }, true);
  document.addEventListener("focusout", (event) => {
    const form = event.target.closest && event.target.closest("[data-cell-editor]");
    if (!form) return;
    window.setTimeout(() => {
      if (form.isConnected && !form.contains(document.activeElement)) commit(form, "blur");
    }, 0);
  });

  document.body.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.elt;
    if (!(target instanceof Element)) return;
    const form = target.matches("[data-cell-editor]") ? target : target.querySelector("[data-cell-editor]");
    if (form) {
      restoreFocusTo = null; // still editing (an error, or just opened): stay here
      const input = form.elements.value;
      input.focus();
      input.select();
      return;
    }
    if (restoreFocusTo) {
      const cell = document.getElementById(restoreFocusTo);
      restoreFocusTo = null;
      const button = cell && cell.querySelector(".cell-value");
      // Never pull focus away from where the person has moved on to (another editor).
      const active = document.activeElement;
      const idle = !active || active === document.body || (cell && cell.contains(active));
      if (button && idle) button.focus();
    }
  });
  document.body.addEventListener("htmx:afterSettle", updateSelectedCount);

  // Enter on a focused cell opens its editor (htmx runs without eval, so no trigger filter).
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const button = event.target.closest && event.target.closest(".cell-value");
    if (!button) return;
    event.preventDefault();
    htmx.trigger(button, "edit");
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

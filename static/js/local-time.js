// Times in the viewer's time zone. The server writes each time in UTC as
// <time datetime="2026-12-01T15:21:05Z" data-local="minutes|seconds|date" title="… UTC">;
// this shows it in the browser's own zone, named ("2026-12-01 10:21 EST"), and leaves the
// UTC time in the title for hover. Without JavaScript the UTC text stays, labelled "UTC".
(function () {
  "use strict";
  const day = { year: "numeric", month: "2-digit", day: "2-digit" };
  const minutes = { ...day, hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" };
  const options = { date: day, minutes: minutes, seconds: { ...minutes, second: "2-digit" } };
  const formatters = {};

  function format(moment, style) {
    // Parts, not the locale's own layout: the panel reads "YYYY-MM-DD HH:MM" everywhere.
    formatters[style] = formatters[style] || new Intl.DateTimeFormat("en-US", options[style]);
    const part = {};
    for (const { type, value } of formatters[style].formatToParts(moment)) part[type] = value;
    let text = `${part.year}-${part.month}-${part.day}`;
    if (style === "date") return text;
    text += ` ${part.hour}:${part.minute}`;
    if (style === "seconds") text += `:${part.second}`;
    return `${text} ${part.timeZoneName}`;
  }

  function render(root) {
    for (const element of root.querySelectorAll("time[data-local]")) {
      const style = element.dataset.local in options ? element.dataset.local : "minutes";
      const moment = new Date(element.getAttribute("datetime"));
      if (Number.isNaN(moment.getTime())) continue;
      element.textContent = format(moment, style);
    }
  }

  render(document);
  // Tables swapped in by htmx (filters, paging) come from the server in UTC again.
  document.addEventListener("htmx:afterSettle", (event) => render(event.target));
})();

// Hookline portal: small progressive enhancements. Every page works without this file.
// Loaded from /portal/static/portal.js (the Content-Security-Policy allows no inline script).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A "Copy" button beside values worth copying (the signing secret, ids).
  for (const el of document.querySelectorAll("#secret-value, #event-id")) {
    if (!navigator.clipboard) break;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(el.textContent.trim());
        button.textContent = "Copied";
      } catch {
        button.textContent = "Copy failed";
      }
      setTimeout(() => (button.textContent = "Copy"), 1500);
    });
    el.after(button);
  }
  // Filters apply as soon as a choice changes (the Filter button stays for keyboards and
  // for pages without script).
  const filter = document.getElementById("event-filter");
  if (filter) {
    for (const select of filter.querySelectorAll("select")) {
      select.addEventListener("change", () => filter.requestSubmit());
    }
  }
  // The notice of an action is shown once: reloading or bookmarking the page does not repeat
  // it (the server only reads `done` to choose a fixed text).
  const url = new URL(window.location.href);
  if (url.searchParams.has("done")) {
    url.searchParams.delete("done");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  // Times shown in the reader's own time zone (the datetime attribute stays UTC).
  for (const t of document.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (!Number.isNaN(d.getTime())) {
      t.title = t.getAttribute("datetime");
      t.textContent = d.toLocaleString();
    }
  }
});

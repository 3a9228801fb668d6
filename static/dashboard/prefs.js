// Preferences kept in this browser only: theme (auto, light, dark) and times (UTC or local).
// Loaded in <head>, before the page paints, so a dark page never flashes light.
(function () {
  "use strict";
  var root = document.documentElement;
  var dark = window.matchMedia("(prefers-color-scheme: dark)");

  function get(name, fallback) {
    try { return localStorage.getItem("dashboard." + name) || fallback; } catch (e) { return fallback; }
  }
  function set(name, value) {
    try {
      if (value === null) localStorage.removeItem("dashboard." + name);
      else localStorage.setItem("dashboard." + name, value);
    } catch (e) { /* private mode: the choice lasts for this page only */ }
  }

  function applyTheme() {
    var theme = get("theme", "auto");
    root.dataset.themeChoice = theme;
    root.dataset.theme = theme === "auto" ? (dark.matches ? "dark" : "light") : theme;
  }

  // Times are rendered in UTC by the server; in "local" mode each <time data-format> is
  // re-rendered in the browser's zone, and put back from data-utc in "utc" mode.
  function applyTimes(scope) {
    var local = get("times", "utc") === "local";
    root.dataset.times = local ? "local" : "utc";
    (scope || document).querySelectorAll("time[data-format]").forEach(function (el) {
      if (!el.dataset.utc) el.dataset.utc = el.textContent;
      if (!local) { el.textContent = el.dataset.utc; return; }
      var when = new Date(el.getAttribute("datetime"));
      var options = el.dataset.format === "clock"
        ? { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZoneName: "short" }
        : { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
            second: "2-digit", hour12: false, timeZoneName: "short" };
      el.textContent = new Intl.DateTimeFormat(undefined, options).format(when);
    });
  }

  function syncControls() {
    document.querySelectorAll(".prefs input[type=radio]").forEach(function (input) {
      input.checked = get(input.name, input.name === "theme" ? "auto" : "utc") === input.value;
    });
  }

  applyTheme();
  dark.addEventListener("change", applyTheme);

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".prefs[hidden]").forEach(function (menu) { menu.hidden = false; });
    syncControls();
    applyTimes();
  });
  document.addEventListener("htmx:afterSettle", function () { applyTimes(); });
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.closest || !input.closest(".prefs")) return;
    set(input.name, input.value);
    applyTheme();
    applyTimes();
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest || !event.target.closest(".prefs .reset")) return;
    set("theme", null);
    set("times", null);
    applyTheme();
    syncControls();
    applyTimes();
  });
})();

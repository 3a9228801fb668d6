// Preferences kept in this browser only: theme (auto, light, dark) and times (UTC, the
// browser's zone, or the dashboard's DASHBOARD_TIME_ZONE, the default when it is set).
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

  // Local times are written as the page's language writes them (<html lang>), in the browser's
  // own variant of it when it has one (en-GB keeps its day/month order on an English page).
  function timeLocale() {
    var page = root.lang || "en";
    var browser = navigator.language || "";
    return browser.split("-")[0].toLowerCase() === page.split("-")[0].toLowerCase() ? browser : page;
  }

  // The dashboard's own zone (DASHBOARD_TIME_ZONE), the default when it is not UTC.
  function serverZone() {
    var meta = document.querySelector("meta[name=dashboard-time-zone]");
    return (meta && meta.content) || "UTC";
  }
  function defaultTimes() { return serverZone() === "UTC" ? "utc" : "server"; }
  // The zone times are shown in: undefined is the browser's own.
  function chosenZone() {
    var times = get("times", defaultTimes());
    if (times === "local") return undefined;
    if (times === "server") return serverZone();
    return "UTC";
  }

  // Times are rendered in UTC by the server; in another zone each <time data-format> and each
  // chart's axis label (data-tick) is written again in it, and put back from data-utc in UTC.
  function applyTimes(scope) {
    var zone = chosenZone();
    var utc = zone === "UTC";
    root.dataset.times = utc ? "utc" : "local";
    (scope || document).querySelectorAll("time[data-format]").forEach(function (el) {
      if (!el.dataset.utc) el.dataset.utc = el.textContent;
      if (utc) { el.textContent = el.dataset.utc; return; }
      var when = new Date(el.getAttribute("datetime"));
      // h23, not hour12: false, which some locales write as 24:05 after midnight.
      var options = el.dataset.format === "clock"
        ? { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short" }
        : { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
            second: "2-digit", hourCycle: "h23", timeZoneName: "short" };
      options.timeZone = zone;
      el.textContent = new Intl.DateTimeFormat(timeLocale(), options).format(when);
    });
    (scope || document).querySelectorAll("[data-tick]").forEach(function (el) {
      if (!el.dataset.utc) el.dataset.utc = el.textContent;
      if (utc) { el.textContent = el.dataset.utc; return; }
      var options = el.dataset.tickFormat === "day"
        ? { month: "short", day: "2-digit", timeZone: zone }
        : { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone };
      el.textContent = new Intl.DateTimeFormat(timeLocale(), options)
        .format(new Date(el.dataset.tick));
    });
    (scope || document).querySelectorAll("[data-zone-caption]").forEach(function (el) {
      el.textContent = utc ? "UTC" : zoneName(zone);
    });
    // Charts' hover titles: each time they show (data-times: text, moment, format, in order)
    // written again in the zone, the zone's name for "UTC".
    (scope || document).querySelectorAll("title[data-times]").forEach(function (el) {
      if (!el.dataset.utc) el.dataset.utc = el.textContent;
      if (utc) { el.textContent = el.dataset.utc; return; }
      var text = el.dataset.utc, from = 0;
      JSON.parse(el.dataset.times).forEach(function (entry) {
        var shown = entry[0];
        var local = entry[2] === "zone" ? zoneName(zone)
          : new Intl.DateTimeFormat(timeLocale(), TITLE_FORMATS[entry[2]](zone)).format(new Date(entry[1]));
        var at = text.indexOf(shown, from);
        if (at < 0) at = text.indexOf(shown);  // a translation that words them in another order
        if (at < 0) return;
        text = text.slice(0, at) + local + text.slice(at + shown.length);
        from = at + local.length;
      });
      el.textContent = text;
    });
  }

  var TITLE_FORMATS = {
    clock: function (zone) { return { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone }; },
    seconds: function (zone) {
      return { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone: zone };
    },
    daytime: function (zone) {
      return { month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
               timeZone: zone };
    }
  };

  function zoneName(zone) {
    var parts = new Intl.DateTimeFormat(timeLocale(), { timeZoneName: "short", timeZone: zone })
      .formatToParts(new Date());
    var name = parts.filter(function (p) { return p.type === "timeZoneName"; })[0];
    return name ? name.value : "";
  }

  function syncControls() {
    document.querySelectorAll(".prefs input[type=radio]").forEach(function (input) {
      input.checked = get(input.name, input.name === "theme" ? "auto" : defaultTimes()) === input.value;
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

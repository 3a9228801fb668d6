// The little the page needs beyond htmx: clean URLs, a filter form that follows the URL,
// live "12 s ago" labels and copy buttons. Everything works without it, only less smoothly.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Parameters left out of URLs when empty or at their default, so bookmarks stay short.
  // The default sort depends on the window: with one, the table opens on what is failing now.
  function defaults(form, windowed) {
    var sort = windowed ? form.dataset.defaultWindowSort : form.dataset.defaultSort;
    return { sort: sort, per_page: form.dataset.defaultPerPage };
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var data = event.detail.formData;
    if (!data || event.detail.elt.id !== "filters") return;
    var skip = defaults(event.detail.elt, data.get("window"));
    Array.from(new Set(data.keys())).forEach(function (name) {
      var kept = data.getAll(name).filter(function (value) {
        return value !== "" && skip[name] !== value;
      });
      data.delete(name);
      kept.forEach(function (value) { data.append(name, value); });
    });
  });

  // Auto-refresh only while the tab is visible (a filter in hx-trigger would need eval,
  // which the Content-Security-Policy forbids).
  document.addEventListener("htmx:confirm", function (event) {
    if (document.hidden && event.target.hasAttribute("data-auto-refresh")) {
      event.preventDefault();
    }
  });

  // The filter form sits outside the swapped table; after every swap or history restore,
  // set it from the state the server rendered (never touching the field being typed in).
  function syncForm() {
    var form = document.getElementById("filters");
    var results = document.getElementById("results");
    if (!form || !results) return;
    var state = new URLSearchParams(results.dataset.query || "");
    var DEFAULTS = defaults(form, state.get("window"));
    addMissingStatuses(form, state.getAll("status"));
    Array.from(form.elements).forEach(function (field) {
      if (!field.name || field === document.activeElement) return;
      if (field.type === "checkbox") {
        field.checked = state.getAll(field.name).indexOf(field.value) >= 0;
      } else if (field.tagName === "SELECT" || field.type === "search" || field.type === "hidden") {
        var value = state.get(field.name);
        field.value = value === null ? (DEFAULTS[field.name] || "") : value;
      }
    });
  }
  // A status the page did not know when it was drawn (chosen from its tile, say) gets its own
  // checkbox, so the next change of the form keeps it.
  function addMissingStatuses(form, statuses) {
    var box = form.querySelector(".status-choices");
    var have = Array.from(form.querySelectorAll("input[name=status]")).map(function (i) {
      return i.value;
    });
    statuses.forEach(function (status) {
      if (have.indexOf(status) >= 0) return;
      var label = document.createElement("label");
      var input = document.createElement("input");
      label.className = "check";
      input.type = "checkbox";
      input.name = "status";
      input.value = status;
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + status));
      box.appendChild(label);
    });
  }
  document.addEventListener("htmx:afterSettle", syncForm);
  document.addEventListener("htmx:historyRestore", syncForm);
  window.addEventListener("pageshow", syncForm);

  // "Since my last visit": the previous full page load's time, kept in this browser only.
  // Read once per full load, so auto-refreshes and clicks keep pointing at the same moment
  // (the link is not boosted: htmx would keep the address it had before this script set it).
  var VISIT_KEY = "dashboard.lastVisit";
  var lastVisit = null;
  try {
    lastVisit = window.localStorage.getItem(VISIT_KEY);
    window.localStorage.setItem(VISIT_KEY, new Date().toISOString());
  } catch (e) {
    lastVisit = null;  // storage disabled: the link stays hidden
  }
  function showSinceLink() {
    var link = document.getElementById("since-last-visit");
    if (!link || !lastVisit || isNaN(Date.parse(lastVisit))) return;
    var params = new URLSearchParams(link.dataset.query || "");
    params.set("since", lastVisit);
    params.delete("page");
    link.href = "/?" + params.toString();
    link.title = "Highlight what changed since " + lastVisit;
    link.hidden = false;
  }
  document.addEventListener("htmx:afterSettle", showSinceLink);
  document.addEventListener("DOMContentLoaded", showSinceLink);

  function compact(seconds) {
    var units = [["d", 86400], ["h", 3600], ["min", 60]];
    for (var i = 0; i < units.length; i++) {
      if (seconds >= units[i][1]) return Math.floor(seconds / units[i][1]) + " " + units[i][0];
    }
    return seconds + " s";
  }
  function tickAges() {
    var now = Date.now();
    document.querySelectorAll("[data-age]").forEach(function (el) {
      var seconds = Math.round((now - Date.parse(el.dataset.age)) / 1000);
      el.textContent = seconds >= 0 ? compact(seconds) + " ago" : "in " + compact(-seconds);
    });
    document.querySelectorAll("[data-next]").forEach(function (el) {
      var seconds = Math.round((Date.parse(el.dataset.next) - now) / 1000);
      el.textContent = seconds > 0 ? "in " + compact(seconds) : "due now";
    });
  }
  setInterval(tickAges, 1000);

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button || !navigator.clipboard) return;
    navigator.clipboard.writeText(button.dataset.copy).then(function () {
      button.textContent = "copied";
      setTimeout(function () { button.textContent = "copy"; }, 1200);
    });
  });
  function showCopyButtons() {
    if (!navigator.clipboard) return;
    document.querySelectorAll("button[data-copy][hidden]").forEach(function (b) { b.hidden = false; });
  }
  document.addEventListener("htmx:afterSettle", showCopyButtons);
  document.addEventListener("DOMContentLoaded", showCopyButtons);
})();

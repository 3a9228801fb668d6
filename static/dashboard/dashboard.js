// The little the page needs beyond htmx: clean URLs, a filter form that follows the URL,
// live "12 s ago" labels and copy buttons. Everything works without it, only less smoothly.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The words this script writes, in the page's language (base.html's <meta>).
  var TEXT = { ago: "%(time)s ago", in: "in %(time)s", dueNow: "due now",
    units: [[86400, "%(count)s d"], [3600, "%(count)s h"], [60, "%(count)s min"], [1, "%(count)s s"]],
    copy: "copy", copied: "copied", sinceTitle: "Highlight what changed since %(time)s" };
  try {
    var meta = document.querySelector("meta[name=dashboard-text]");
    if (meta) TEXT = JSON.parse(meta.content);
  } catch (e) { /* the English above */ }
  function fill(template, name, value) {
    return template.split("%(" + name + ")s").join(value);
  }

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

  // Auto-refresh: only while the tab is visible, never while the reader types in a field, has
  // a menu open or is selecting text, and at the interval they chose (a filter in hx-trigger
  // would need eval, which the Content-Security-Policy forbids). The choice is this browser's
  // own (a wall screen and a laptop want different ones), never part of the shared URL.
  var REFRESH_KEY = "dashboard.refresh";
  var lastRefresh = Date.now();
  function refreshChoice() {
    try { return localStorage.getItem(REFRESH_KEY) || "auto"; } catch (e) { return "auto"; }
  }
  function busy() {
    // A field of the results (the name of a view to save) would be replaced under the cursor;
    // the filter form sits outside them and keeps what is typed.
    var active = document.activeElement;
    var results = document.getElementById("results");
    if (active && results && results.contains(active)
        && active.matches("input, textarea, select")) return true;
    if (document.querySelector("details[open]")) return true;
    var selection = window.getSelection && window.getSelection();
    return Boolean(selection && !selection.isCollapsed && String(selection).trim());
  }
  function typedSomething() {
    return Array.from(document.querySelectorAll("#results input[type=text]")).some(function (i) {
      return i.value !== "";
    });
  }
  document.addEventListener("htmx:confirm", function (event) {
    var tick = event.target;
    if (!tick.hasAttribute("data-auto-refresh")) return;
    var choice = refreshChoice();
    var wait = choice === "auto" || tick.hasAttribute("data-pending") ? 0 : Number(choice) * 1000;
    if (document.hidden || choice === "off" || busy() || typedSomething()
        || Date.now() - lastRefresh < wait - 1000) {
      event.preventDefault();
    }
  });
  function showRefreshChoice() {
    var select = document.getElementById("refresh-every");
    if (!select) return;
    select.value = refreshChoice();
    if (select.selectedIndex < 0) select.value = "auto";
    var box = select.closest("[hidden]");
    if (box) box.hidden = false;
  }

  // The column chooser: the hidden columns (by name) are this browser's choice; the service
  // name always shows. Applied again after every swap, since the rows are drawn afresh.
  var COLUMNS_KEY = "dashboard.hiddenColumns";
  function hiddenColumns() {
    try { return JSON.parse(localStorage.getItem(COLUMNS_KEY) || "[]"); } catch (e) { return []; }
  }
  function applyColumns() {
    var table = document.querySelector("#results table.services");
    var menu = document.querySelector(".columns-menu ul");
    if (!table || !menu) return;
    var hidden = hiddenColumns();
    var headers = Array.from(table.querySelectorAll("thead th"));
    var rows = Array.from(table.querySelectorAll("tbody tr"));
    menu.textContent = "";
    headers.forEach(function (th, index) {
      var name = th.dataset.col;
      var hide = name !== "service_name" && hidden.indexOf(name) >= 0;
      th.hidden = hide;
      rows.forEach(function (row) {
        if (row.cells.length === headers.length) row.cells[index].hidden = hide;
      });
      if (name === "service_name") return;
      var item = document.createElement("li");
      var label = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.value = name;
      box.checked = !hide;
      box.dataset.column = "1";
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + th.textContent.replace(/[▲▼]/g, "").trim()));
      item.appendChild(label);
      menu.appendChild(item);
    });
  }
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.dataset || !box.dataset.column) return;
    var hidden = hiddenColumns().filter(function (name) { return name !== box.value; });
    if (!box.checked) hidden.push(box.value);
    try { localStorage.setItem(COLUMNS_KEY, JSON.stringify(hidden)); } catch (e) { /* page only */ }
    applyColumns();
  });
  document.addEventListener("DOMContentLoaded", applyColumns);
  document.addEventListener("htmx:afterSettle", applyColumns);
  document.addEventListener("change", function (event) {
    if (event.target.id !== "refresh-every") return;
    try { localStorage.setItem(REFRESH_KEY, event.target.value); } catch (e) { /* this page only */ }
    event.target.blur();
  });
  document.addEventListener("DOMContentLoaded", showRefreshChoice);

  // A swap of the results keeps the reader's place: the link or button that had the focus
  // gets it back (by its address or name), so a refresh never drops a keyboard user to <body>.
  var focusKey = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    var results = document.getElementById("results");
    focusKey = null;
    if (!active || !results || !results.contains(active) || event.detail.target !== results) return;
    focusKey = { tag: active.tagName, href: active.getAttribute("href"), name: active.name || null,
      text: active.textContent };
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var id = event.detail.target && event.detail.target.id;
    if (id === "results" || id === "service-live") lastRefresh = Date.now();
  });
  document.addEventListener("htmx:afterSettle", function () {
    var key = focusKey;
    focusKey = null;
    if (!key || (document.activeElement && document.activeElement !== document.body)) return;
    var results = document.getElementById("results");
    if (!results) return;
    var match = Array.from(results.querySelectorAll(key.tag)).filter(function (el) {
      if (key.href) return el.getAttribute("href") === key.href;
      if (key.name) return el.name === key.name;
      return el.textContent === key.text;
    })[0];
    if (match) match.focus({ preventScroll: true });
  });

  // "/" goes to the search box, as on most sites, unless the reader is typing somewhere.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var active = document.activeElement;
    if (active && (active.isContentEditable || active.matches("input, textarea, select"))) return;
    var search = document.getElementById("q");
    if (!search) return;
    event.preventDefault();
    search.focus();
    search.select();
  });

  // On a small screen the filters fold behind one button (the search box stays out).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".filters-toggle");
    if (!button) return;
    var form = button.closest("form");
    var open = !form.classList.contains("filters-open");
    form.classList.toggle("filters-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
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

  // As web/format.py writes them: "12 s", "5 min", "3 h", "4 d".
  function compact(seconds) {
    for (var i = 0; i < TEXT.units.length; i++) {
      var size = TEXT.units[i][0];
      if (seconds >= size || size === 1) {
        return fill(TEXT.units[i][1], "count", String(Math.floor(seconds / size)));
      }
    }
    return String(seconds);
  }
  function tickAges() {
    var now = Date.now();
    document.querySelectorAll("[data-age]").forEach(function (el) {
      var seconds = Math.round((now - Date.parse(el.dataset.age)) / 1000);
      el.textContent = seconds >= 0
        ? fill(TEXT.ago, "time", compact(seconds))
        : fill(TEXT.in, "time", compact(-seconds));
    });
    document.querySelectorAll("[data-next]").forEach(function (el) {
      var seconds = Math.round((Date.parse(el.dataset.next) - now) / 1000);
      el.textContent = seconds > 0 ? fill(TEXT.in, "time", compact(seconds)) : TEXT.dueNow;
    });
  }
  setInterval(tickAges, 1000);

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button || !navigator.clipboard) return;
    navigator.clipboard.writeText(button.dataset.copy).then(function () {
      button.textContent = TEXT.copied;
      setTimeout(function () { button.textContent = TEXT.copy; }, 1200);
    });
  });
  function showCopyButtons() {
    if (!navigator.clipboard) return;
    document.querySelectorAll("button[data-copy][hidden]").forEach(function (b) { b.hidden = false; });
  }
  document.addEventListener("htmx:afterSettle", showCopyButtons);
  document.addEventListener("DOMContentLoaded", showCopyButtons);

  // The language switch goes back to the page as it is now: htmx may have moved the address
  // on since the header (and its hidden "next") was drawn.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("language")) return;
    var next = form.querySelector("input[name=next]");
    if (next) next.value = window.location.pathname + window.location.search;
  });
})();

// console.js - the script of Postern's status page (postern-httpd(8)).
// The page works without it; with it, the page updates itself in place
// and, once the admin token is entered, offers the queue browser and its
// actions. The token lives in sessionStorage only (gone with the tab) and
// travels as an Authorization header, never as a cookie.
"use strict";
(function () {
  var KEY = "postern.token";
  var POLL = 5000, LIVE_POLL = 15000, RETRY = 3000;
  var state = { token: null, stream: null, timer: null, pending: null,
    refreshes: 0, current: null };

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function auth() {
    return state.token ? { Authorization: "Bearer " + state.token } : {};
  }
  function api(method, path) {
    return fetch(path, { method: method, headers: auth(), cache: "no-store" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          return { status: r.status, body: j };
        });
      });
  }
  function setLive(text) { $("live").textContent = text; }

  // ---- the page's sections, fetched again and swapped in place
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) { t.title = t.getAttribute("datetime"); t.textContent = d.toLocaleString(); }
    });
  }
  function decorate() {
    localTimes(document);
    document.querySelectorAll("#destinations thead a").forEach(function (a) {
      a.addEventListener("click", function (ev) {
        ev.preventDefault();
        history.replaceState(null, "", a.getAttribute("href"));
        refresh();
      });
    });
    document.querySelectorAll("button[data-flush-dest]").forEach(function (b) {
      b.hidden = !state.token;
      b.addEventListener("click", function () {
        var d = b.getAttribute("data-flush-dest");
        act("POST", "/api/v1/queue/destinations/flush?destination=" +
          encodeURIComponent(d), "Flush every deferred message for " + d);
      });
    });
  }
  function refresh() {
    return fetch(location.pathname + location.search,
      { headers: auth(), cache: "no-store" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        doc.querySelectorAll("section.live").forEach(function (s) {
          var old = $(s.id);
          if (old) old.replaceChildren.apply(old,
            Array.prototype.slice.call(s.childNodes).map(function (n) {
              return document.importNode(n, true);
            }));
        });
        state.refreshes++;
        document.body.setAttribute("data-refreshes", String(state.refreshes));
        decorate();
      })
      .catch(function () { setLive("offline: the server does not answer"); });
  }
  function soon() {
    if (state.pending) return;
    state.pending = setTimeout(function () { state.pending = null; refresh(); }, 400);
  }
  function poll(ms) {
    clearInterval(state.timer);
    state.timer = setInterval(refresh, ms);
  }

  // ---- live: the event stream (Server-Sent Events read with fetch, as
  // EventSource cannot send the Authorization header)
  function onFrame(frame) {
    var data = frame.split("\n").filter(function (l) {
      return l.indexOf("data:") === 0;
    }).map(function (l) { return l.slice(5).trim(); }).join("\n");
    if (!data) return;
    try { document.body.setAttribute("data-last-event", JSON.parse(data).event); } catch (e) { return; }
    soon();
  }
  function stream() {
    if (!state.token || state.stream) return;
    var ctl = new AbortController(), buf = "", dec = new TextDecoder();
    state.stream = ctl;
    fetch("/api/v1/events", { headers: auth(), signal: ctl.signal, cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { lock(); $("token-note").textContent = "the token was refused"; return; }
        if (r.status !== 200 || !r.body) throw new Error("status " + r.status);
        setLive("live (event stream)");
        var rd = r.body.getReader();
        function pump() {
          return rd.read().then(function (x) {
            if (x.done) throw new Error("closed");
            buf += dec.decode(x.value, { stream: true });
            var i;
            while ((i = buf.indexOf("\n\n")) >= 0) {
              onFrame(buf.slice(0, i));
              buf = buf.slice(i + 2);
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        state.stream = null;
        if (!state.token) return;
        setLive("reconnecting to the event stream");
        setTimeout(stream, RETRY);
      });
  }
  function stopStream() {
    if (state.stream) state.stream.abort();
    state.stream = null;
  }

  // ---- the token
  function unlock(token) {
    state.token = token;
    sessionStorage.setItem(KEY, token);
    $("forget").hidden = false;
    $("token").hidden = true;
    $("tokenform").querySelector("button[type=submit]").hidden = true;
    $("browser-locked").hidden = true;
    $("browser-open").hidden = false;
    poll(LIVE_POLL);
    stream();
    refresh();
  }
  function lock() {
    state.token = null;
    sessionStorage.removeItem(KEY);
    stopStream();
    $("forget").hidden = true;
    $("token").hidden = false;
    $("tokenform").querySelector("button[type=submit]").hidden = false;
    $("browser-locked").hidden = false;
    $("browser-open").hidden = true;
    $("message").hidden = true;
    setLive("refreshed every 5 s");
    poll(POLL);
    refresh();
  }
  function tokenSubmit(ev) {
    ev.preventDefault();
    var t = $("token").value.trim();
    if (!t) return;
    fetch("/api/v1/queue/summary", { headers: { Authorization: "Bearer " + t }, cache: "no-store" })
      .then(function (r) {
        if (r.status === 200) { $("token").value = ""; $("token-note").textContent = ""; unlock(t); }
        else $("token-note").textContent = r.status === 401 ? "wrong token" : "error " + r.status;
      });
  }

  // ---- the queue browser
  function rcptSummary(m) {
    return (m.recipients || []).map(function (r) {
      return r.address + " (" + r.state + ")";
    }).join(", ");
  }
  function search(q) {
    $("search-note").textContent = "searching...";
    return api("GET", "/api/v1/queue?q=" + encodeURIComponent(q)).then(function (r) {
      var tb = $("results").querySelector("tbody");
      tb.replaceChildren();
      if (r.status !== 200) {
        $("search-note").textContent = r.status + ": " + (r.body.error || "failed");
        $("results").hidden = true;
        return r;
      }
      (r.body.messages || []).forEach(function (m) {
        var tr = el("tr");
        tr.setAttribute("data-id", m.id);
        tr.appendChild(el("td", m.id, "id"));
        tr.appendChild(el("td", m.arrival_time));
        tr.appendChild(el("td", m.sender || "<>"));
        tr.appendChild(el("td", rcptSummary(m)));
        tr.addEventListener("click", function () { show(m.id); });
        tb.appendChild(tr);
      });
      $("results").hidden = r.body.count === 0;
      $("search-note").textContent = r.body.count + " message" +
        (r.body.count === 1 ? "" : "s") + " " + r.body.result;
      return r;
    });
  }
  function dl(pairs) {
    var d = el("dl");
    pairs.forEach(function (p) { d.appendChild(el("dt", p[0])); d.appendChild(el("dd", p[1])); });
    return d;
  }
  function table(head, rows, id) {
    var t = el("table"), tr = el("tr"), th = el("thead"), tb = el("tbody");
    if (id) t.id = id;
    head.forEach(function (h) { tr.appendChild(el("th", h)); });
    th.appendChild(tr);
    t.appendChild(th);
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c) { row.appendChild(el("td", c)); });
      tb.appendChild(row);
    });
    t.appendChild(tb);
    var w = el("div", null, "scroll");
    w.appendChild(t);
    return w;
  }
  function button(label, cls, fn) {
    var b = el("button", label, cls);
    b.type = "button";
    b.addEventListener("click", fn);
    return b;
  }
  function renderMessage(m) {
    var box = $("message"), acts = el("div", null, "actions"), id = m.id;
    box.replaceChildren();
    box.setAttribute("data-id", id);
    box.appendChild(el("h3", "Message " + id));
    box.appendChild(dl([["size", m.size + " bytes"], ["arrival", m.arrival_time],
      ["sender", "<" + m.sender + ">"], ["client", m.client], ["helo", m.helo],
      ["authenticated", m.auth_user || "-"]]));
    box.appendChild(el("h4", "Recipients"));
    box.appendChild(table(["address", "state", "attempts", "next attempt", "dsn", "last reply"],
      (m.recipients || []).map(function (r) {
        return [r.address, r.state + (r.in_flight ? " (in delivery)" : ""),
          r.attempts, r.next_attempt_time || "-", r.dsn || "-", r.last_reply || "-"];
      }), "rcpt-table"));
    [["Flush", "POST", "/flush"], ["Hold", "POST", "/hold"], ["Release", "POST", "/release"],
      ["Requeue", "POST", "/requeue"], ["Delete", "DELETE", ""]].forEach(function (a) {
      acts.appendChild(button(a[0], a[0] === "Delete" ? "danger" : "act", function () {
        act(a[1], "/api/v1/queue/" + id + a[2], a[0] + " message " + id, id);
      }));
    });
    box.appendChild(acts);
    box.appendChild(el("p", "", "note")).id = "action-note";
    box.appendChild(el("h4", "Header"));
    box.appendChild(table(["field", "value"], (m.headers || []).map(function (h) {
      return [h.name, h.value];
    }), "header-table"));
    box.hidden = false;
  }
  function show(id) {
    state.current = id;
    return api("GET", "/api/v1/queue/" + encodeURIComponent(id)).then(function (r) {
      if (r.status === 200 && r.body.messages && r.body.messages.length) renderMessage(r.body.messages[0]);
      else {
        $("message").replaceChildren(el("p", r.status === 404 ? "message " + id +
          " is no longer in the queue" : r.status + ": " + (r.body.error || "failed")));
        $("message").hidden = false;
      }
      return r;
    });
  }
  function note(text) {
    var n = $("action-note") || $("search-note");
    n.textContent = text;
  }
  function act(method, path, what, id) {
    if (!window.confirm(what + "?")) { note("cancelled"); return Promise.resolve(null); }
    return api(method, path).then(function (r) {
      var text = r.status === 200 ? what + ": " + r.body.result
        : what + " refused: " + r.status + " " + (r.body.error || "");
      document.body.setAttribute("data-last-action", r.status + " " + what);
      refresh();
      var done = id ? show(id) : Promise.resolve();
      return done.then(function () { note(text); return r; });
    });
  }

  // ---- start
  document.addEventListener("DOMContentLoaded", function () {
    var admin = document.body.getAttribute("data-admin") === "1";
    decorate();
    $("tokenform").hidden = !admin;
    $("tokenform").addEventListener("submit", tokenSubmit);
    $("forget").addEventListener("click", lock);
    $("search").addEventListener("submit", function (ev) {
      ev.preventDefault();
      search($("q").value.trim());
    });
    window.postern = { state: state, refresh: refresh, search: search, show: show, act: act };
    var saved = admin ? sessionStorage.getItem(KEY) : null;
    if (saved) unlock(saved);
    else {
      if (!admin) $("browser-locked").textContent = "The queue browser needs an admin_token in the http section of postern.conf.";
      $("browser-locked").hidden = false;
      setLive("refreshed every 5 s");
      poll(POLL);
    }
  });
})();

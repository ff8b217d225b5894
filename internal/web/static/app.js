// Slipway's dashboard script: small, plain, loaded from this origin only
// (the Content Security Policy allows no inline script). Every text that
// comes from an app (log lines, deployment messages) is set with
// textContent, never parsed as markup. Live parts that the server renders
// (data-live) are its own templates' output, escaped there.
"use strict";

// Times in the browser's own zone.
function localizeTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) { t.textContent = d.toLocaleString(); t.title = t.getAttribute("datetime"); }
  }
}

// data-live: the server sends the part again as it changes.
function live(el) {
  const es = new EventSource(el.dataset.live);
  es.addEventListener("fragment", (e) => { el.innerHTML = e.data; localizeTimes(el); });
  es.addEventListener("gone", (e) => {
    es.close();
    const p = document.createElement("p");
    p.className = "error"; p.setAttribute("role", "alert"); p.textContent = e.data;
    el.replaceChildren(p);
  });
}

// data-follow: a deployment's steps as they happen, then its outcome.
function follow(list) {
  const es = new EventSource(list.dataset.follow);
  let seen = 0;
  es.onopen = () => { seen = 0; }; // a reconnected stream starts again from the first event
  es.addEventListener("event", (e) => {
    seen++;
    if (seen <= list.children.length) return;
    const ev = JSON.parse(e.data).event;
    const li = document.createElement("li");
    li.className = ev.step ? "step" : "progress";
    const t = document.createElement("time");
    t.setAttribute("datetime", ev.at);
    li.append(t, " ");
    if (ev.step) { const s = document.createElement("strong"); s.textContent = ev.step; li.append(s, " "); }
    const m = document.createElement("span"); m.className = "msg"; m.textContent = ev.message; li.append(m);
    list.append(li);
    localizeTimes(li);
  });
  es.addEventListener("deployment", (e) => {
    const d = JSON.parse(e.data).deployment;
    if (d.state === "running") return;
    es.close();
    const state = document.getElementById("dep-state");
    state.textContent = d.state; state.className = "state state-" + d.state;
    const reason = document.getElementById("dep-reason");
    if (d.reason) { reason.textContent = d.reason; reason.hidden = false; }
    if (d.finished) {
      const t = document.createElement("time"); t.setAttribute("datetime", d.finished);
      document.getElementById("dep-finished").replaceChildren(t); localizeTimes(t.parentNode);
    }
    const cancel = document.getElementById("dep-cancel");
    if (cancel) cancel.remove();
  });
}

// data-upload: the file goes up with a progress bar; the answer is the
// deployment's page, or an error page whose message is shown here.
function upload(form) {
  const bar = form.querySelector(".upload-progress"), progress = bar.querySelector("progress"),
    text = bar.querySelector(".progress-text"), err = form.querySelector("p.error"), button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.responseType = "document";
    xhr.setRequestHeader("X-CSRF-Token", form.elements.csrf.value);
    bar.hidden = false; err.hidden = true; button.disabled = true;
    xhr.upload.onprogress = (p) => {
      if (!p.lengthComputable) return;
      progress.value = Math.round(100 * p.loaded / p.total);
      text.textContent = progress.value + "% uploaded";
    };
    xhr.upload.onload = () => { text.textContent = "Uploaded; starting the deployment…"; };
    xhr.onload = () => {
      if (xhr.status < 400) { window.location.assign(xhr.responseURL); return; }
      const alert = xhr.response && xhr.response.querySelector("[role=alert]");
      err.textContent = alert ? alert.textContent : "The upload failed with status " + xhr.status + ".";
      err.hidden = false; bar.hidden = true; button.disabled = false;
    };
    xhr.onerror = () => {
      err.textContent = "The upload did not reach the server; check the connection and try again.";
      err.hidden = false; bar.hidden = true; button.disabled = false;
    };
    xhr.send(new FormData(form));
  });
}

// data-add-row: another row for a new variable.
function addRows(button) {
  const rows = document.querySelector("[data-rows]");
  button.hidden = false;
  button.addEventListener("click", () => {
    const tmpl = document.querySelector("[data-new-row]:last-of-type");
    const row = tmpl.cloneNode(true), n = rows.value;
    for (const input of row.querySelectorAll("input")) {
      input.name = input.name.replace(/\.\d+$/, "." + n);
      if (input.type === "checkbox") input.checked = false; else input.value = "";
    }
    tmpl.after(row);
    rows.value = String(Number(n) + 1);
    row.querySelector("input").focus();
  });
}

// data-logs: the live log, filtered, pausable; each line as text.
function logs(bar) {
  const list = document.getElementById("log"), empty = document.querySelector("[data-log-empty]"),
    status = bar.querySelector(".log-status"), pause = bar.querySelector("[data-pause]");
  const maxLines = 2000;
  let es = null, paused = false, held = [];
  function line(l) {
    const li = document.createElement("li");
    if (l.missed) { li.className = "marker"; li.textContent = "… " + l.missed + " line(s) missed: this reader fell behind"; return li; }
    li.className = (l.source === "platform" ? "platform " : "") + (l.stream || "");
    const t = document.createElement("time"); t.setAttribute("datetime", l.time);
    const src = document.createElement("span"); src.className = "src"; src.textContent = l.source + (l.release ? " v" + l.release : "");
    const text = document.createElement("span"); text.className = "text"; text.textContent = l.text;
    li.append(t, src, text);
    localizeTimes(li);
    return li;
  }
  function show(lines) {
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    for (const l of lines) list.append(line(l));
    while (list.children.length > maxLines) list.firstChild.remove();
    if (list.children.length) empty.hidden = true;
    if (atBottom) list.scrollTop = list.scrollHeight;
  }
  function connect() {
    if (es) es.close();
    list.replaceChildren(); held = []; empty.hidden = false;
    const q = new URLSearchParams();
    for (const s of bar.querySelectorAll("select")) if (s.value) q.set(s.name, s.value);
    es = new EventSource(bar.dataset.logs + (q.toString() ? "?" + q : ""));
    let opened = false;
    es.onopen = () => {
      // A stream that reconnected by itself sends its recent lines again.
      if (opened) { list.replaceChildren(); held = []; }
      opened = true;
      status.textContent = paused ? "paused" : "live";
    };
    es.onerror = () => { status.textContent = "reconnecting…"; };
    es.addEventListener("log", (e) => {
      const l = JSON.parse(e.data);
      if (paused) { held.push(l); if (held.length > maxLines) held.shift(); status.textContent = "paused, " + held.length + " new line(s) held"; return; }
      show([l]);
    });
  }
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) { show(held); held = []; }
    status.textContent = paused ? "paused" : "live";
  });
  for (const s of bar.querySelectorAll("select")) s.addEventListener("change", connect);
  connect();
}

document.addEventListener("DOMContentLoaded", () => {
  localizeTimes(document);
  for (const el of document.querySelectorAll("[data-live]")) live(el);
  for (const el of document.querySelectorAll("[data-follow]")) follow(el);
  for (const el of document.querySelectorAll("form[data-upload]")) upload(el);
  for (const el of document.querySelectorAll("[data-add-row]")) addRows(el);
  for (const el of document.querySelectorAll("[data-logs]")) logs(el);
});

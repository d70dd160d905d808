// The wampd status page: server-sent events from /status/events, rendered as text (never as HTML).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);

  function cell(row, value, numeric) {
    const td = document.createElement("td");
    td.textContent = value === null || value === undefined ? "" : String(value);
    if (numeric) td.className = "num";
    row.appendChild(td);
  }

  function fill(id, items, columns) {
    const body = $(id).tBodies[0];
    const rows = document.createDocumentFragment();
    for (const item of items) {
      const row = document.createElement("tr");
      for (const [key, numeric] of columns) cell(row, typeof key === "function" ? key(item) : item[key], numeric);
      rows.appendChild(row);
    }
    body.replaceChildren(rows);
  }

  function duration(seconds) {
    if (seconds < 60) return seconds.toFixed(0) + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }

  function describe(event) {
    const when = new Date(event.at * 1000).toLocaleTimeString();
    const parts = [when, event.event];
    for (const key of ["realm", "session", "authid", "authrole", "transport", "address", "reason", "message"]) {
      if (event[key] !== undefined && event[key] !== null) parts.push(key + "=" + event[key]);
    }
    return parts.join("  ");
  }

  function addEvent(event) {
    const item = document.createElement("li");
    item.textContent = describe(event);
    const list = $("events");
    list.insertBefore(item, list.firstChild);
    while (list.children.length > 200) list.removeChild(list.lastChild);
  }

  function snapshot(state) {
    $("summary").textContent =
      "v" + state.version + ", up " + duration(state.uptime) + ", connections: " + state.connections;
    fill("realms", state.realms, [["name"], ["sessions", true], ["subscriptions", true], ["registrations", true], ["retained", true]]);
    fill("sessions", state.sessions, [
      ["id"], ["realm"], ["authid"], ["authrole"],
      [(s) => s.transport + " / " + s.serializer], ["address"], [(s) => duration(s.connected_for), true],
    ]);
    fill("subscriptions", state.subscriptions, [["realm"], ["uri"], ["match"], ["subscribers", true]]);
    fill("registrations", state.registrations, [["realm"], ["uri"], ["match"], ["invoke"], ["callees", true]]);
    $("rates").textContent = state.rates.received + " messages/s received, " + state.rates.sent + " messages/s sent";
    if (!snapshot.seenEvents) {
      snapshot.seenEvents = true;
      for (const event of state.events) addEvent(event);
    }
  }

  function connect() {
    const source = new EventSource("/status/events");
    const status = $("state");
    source.addEventListener("snapshot", (message) => {
      snapshot(JSON.parse(message.data));
      status.dataset.state = "live";
      status.textContent = "live";
    });
    source.addEventListener("lifecycle", (message) => addEvent(JSON.parse(message.data)));
    source.onerror = () => {
      status.dataset.state = "lost";
      status.textContent = "reconnecting…";
    };
  }

  connect();
})();

// aws-iot-mock console: a plain ES module, no framework, no build step, nothing from a CDN.
// Data arrives over one server-sent events stream (/console/api/events) whose query carries
// the page's filters; actions are JSON POSTs. Every value is written with textContent.

const MAX_ROWS = 500;
const MAX_MESSAGES = 200;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(`/console/api/${path}`, { credentials: "same-origin", ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.message || response.statusText);
    error.body = body;
    throw error;
  }
  return body;
}

const post = (path, document) =>
  api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(document),
  });

const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");

function show(target, text, ok) {
  target.className = `result ${ok ? "ok" : "error"}`;
  target.replaceChildren(text);
}

function explanationBox(explanation) {
  if (!explanation) return null;
  return el(
    "div",
    { class: "explanation" },
    explanation.meaning,
    el("br"),
    el("small", {}, `The client sees: ${explanation.clientSees}`),
  );
}

// -- navigation ------------------------------------------------------------------------------

function showPage(name) {
  for (const button of document.querySelectorAll("nav button")) {
    button.classList.toggle("active", button.dataset.page === name);
  }
  for (const page of document.querySelectorAll(".page")) {
    page.hidden = page.id !== `page-${name}`;
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

// -- the live channel ------------------------------------------------------------------------

const state = {
  log: { status: "", eventType: "", clientId: "", reason: "" },
  topics: [],
  shadowTopic: null,
  source: null,
};

function openStream() {
  if (state.source) state.source.close();
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(state.log)) if (value) query.append(key, value);
  const topics = [...state.topics];
  if (state.shadowTopic && !topics.includes(state.shadowTopic)) topics.push(state.shadowTopic);
  for (const topic of topics) query.append("topic", topic);
  $("log-table").tBodies[0].replaceChildren();
  const source = new EventSource(`/console/api/events?${query}`);
  state.source = source;
  source.addEventListener("open", () => setLive(true));
  source.addEventListener("error", () => setLive(false));
  source.addEventListener("hello", (event) => {
    const data = JSON.parse(event.data);
    renderStats(data.stats);
    renderConnections(data.connections);
  });
  source.addEventListener("stats", (event) => renderStats(JSON.parse(event.data)));
  source.addEventListener("connections", (event) => renderConnections(JSON.parse(event.data)));
  source.addEventListener("log", (event) => addLogEntry(JSON.parse(event.data)));
  source.addEventListener("message", (event) => addMessage(JSON.parse(event.data)));
  source.addEventListener("dropped", (event) => {
    const { count } = JSON.parse(event.data);
    addLogNote(`${count} event(s) dropped: this page did not keep up`);
  });
}

function setLive(on) {
  const live = $("live");
  live.className = `live ${on ? "on" : "off"}`;
  live.textContent = on ? "live" : "offline";
}

// -- overview --------------------------------------------------------------------------------

function renderStats(stats) {
  $("ov-connected").textContent = stats.connected;
  $("ov-rate").textContent = stats.messagesPerSecond;
  $("ov-refusals").textContent = stats.refusalsLastMinute;
}

async function loadOverview() {
  const overview = await api("overview");
  $("ov-endpoint").textContent = overview.endpoint;
  $("ov-account").textContent = `${overview.region} / ${overview.accountId}`;
  $("ov-policy").textContent = overview.securityPolicy;
  $("ov-domains").textContent = overview.domains.join(", ");
  renderStats(overview);
  $("ov-doors").tBodies[0].replaceChildren(
    ...overview.doors.map((door) =>
      el(
        "tr",
        {},
        el("td", {}, door.door),
        el("td", {}, door.host),
        el("td", {}, door.port ?? ""),
        el("td", {}, door.port === null ? `off: ${door.offReason}` : "listening"),
      ),
    ),
  );
}

// -- connections -----------------------------------------------------------------------------

function renderConnections(document) {
  const shown = document.connections.length;
  $("conn-total").textContent =
    shown === document.total ? `(${shown})` : `(${shown} of ${document.total})`;
  $("conn-table").tBodies[0].replaceChildren(
    ...document.connections.map((row) =>
      el(
        "tr",
        { "data-client-id": row.clientId },
        el("td", {}, el("code", {}, row.clientId)),
        el("td", {}, el("code", { title: row.principalId }, row.principalId.slice(0, 12))),
        el("td", {}, row.things.join(", ")),
        el("td", { title: row.transport || "" }, row.door || ""),
        el("td", {}, row.protocolVersion),
        el("td", {}, time(row.connectedSince)),
        el("td", {}, el("code", {}, (row.subscriptions || []).join("\n"))),
        el("td", {}, row.queuedMessages ?? 0),
        el(
          "td",
          {},
          el("button", { type: "button", class: "danger", onclick: () => disconnect(row.clientId) }, "Disconnect"),
        ),
      ),
    ),
  );
}

async function disconnect(clientId) {
  try {
    await post("disconnect", {
      clientId,
      preventWillMessage: $("conn-prevent-will").checked,
      cleanSession: $("conn-clean").checked,
    });
    show($("conn-result"), `${clientId} disconnected (API_INITIATED_DISCONNECT)`, true);
  } catch (error) {
    show($("conn-result"), error.message, false);
  }
}

// -- log -------------------------------------------------------------------------------------

function trim(list, max) {
  while (list.children.length > max) list.lastElementChild.remove();
}

function addLogEntry(entry) {
  const record = entry.record;
  const why = [];
  if (record.reason) why.push(el("strong", {}, record.reason), " ");
  if (record.details) why.push(record.details);
  if (record.topicName) why.push(el("code", {}, ` ${record.topicName}`));
  const body = $("log-table").tBodies[0];
  body.prepend(
    el(
      "tr",
      { class: record.status, "data-reason": record.reason || "" },
      el("td", {}, String(record.timestamp || "").replace(/^.* /, "")),
      el("td", {}, record.status),
      el("td", {}, record.eventType),
      el("td", {}, el("code", {}, record.clientId || "")),
      el("td", {}, ...why, explanationBox(entry.explanation)),
    ),
  );
  trim(body, MAX_ROWS);
}

function addLogNote(text) {
  $("log-table").tBodies[0].prepend(el("tr", {}, el("td", { colspan: "5" }, text)));
}

async function loadReasons() {
  const { reasons } = await api("reasons");
  $("log-reasons").replaceChildren(...Object.keys(reasons).map((name) => el("option", {}, name)));
}

// -- MQTT test client ------------------------------------------------------------------------

function renderSubscriptions() {
  $("sub-list").replaceChildren(
    ...state.topics.map((topic) =>
      el(
        "li",
        {},
        el("code", {}, topic),
        el("button", {
          type: "button",
          class: "secondary",
          title: "unsubscribe",
          onclick: () => {
            state.topics = state.topics.filter((t) => t !== topic);
            renderSubscriptions();
            openStream();
          },
        }, "×"),
      ),
    ),
  );
}

function messageItem(message) {
  const payload = message.payload ?? `(binary, base64) ${message.payloadBase64}`;
  let pretty = payload;
  try {
    pretty = JSON.stringify(JSON.parse(payload), null, 2);
  } catch {
    // not JSON: shown as sent
  }
  const meta = [`QoS ${message.qos}`, time(message.publishedAt), `${message.size} bytes`];
  if (message.retain) meta.push("retained");
  meta.push(message.sender ? `from ${message.sender}` : "from the broker or the cloud side");
  return el(
    "li",
    { "data-topic": message.topic },
    el("div", { class: "topic" }, message.topic),
    el("div", { class: "meta" }, meta.join(" · ")),
    message.properties ? el("div", { class: "meta" }, JSON.stringify(message.properties)) : null,
    el("pre", {}, pretty),
  );
}

function addMessage(message) {
  if (message.filters.some((f) => state.topics.includes(f))) {
    $("msg-list").prepend(messageItem(message));
    trim($("msg-list"), MAX_MESSAGES);
  }
  if (state.shadowTopic && message.filters.includes(state.shadowTopic)) {
    $("shadow-events").prepend(messageItem(message));
    trim($("shadow-events"), MAX_MESSAGES);
    if (message.topic.endsWith("/update/documents") || message.topic.endsWith("/delete/accepted")) {
      loadShadow();
    }
  }
}

async function subscribe(event) {
  event.preventDefault();
  const topic = $("sub-filter").value.trim();
  if (!topic || state.topics.includes(topic)) return;
  // Checked by the broker (AWS's filter rules) before the page keeps it.
  try {
    await api(`topic-filter?${new URLSearchParams({ topic })}`);
  } catch (error) {
    show($("sub-result"), error.message, false);
    return;
  }
  state.topics.push(topic);
  show($("sub-result"), `Subscribed to ${topic}`, true);
  renderSubscriptions();
  openStream();
}

function userProperties(text) {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const at = line.indexOf("=");
      return at < 0 ? [line, ""] : [line.slice(0, at), line.slice(at + 1)];
    });
}

async function publish(event) {
  event.preventDefault();
  const expiry = $("pub-expiry").value;
  const document = {
    topic: $("pub-topic").value,
    payload: $("pub-payload").value,
    qos: Number($("pub-qos").value),
    retain: $("pub-retain").checked,
    contentType: $("pub-content-type").value,
    responseTopic: $("pub-response-topic").value,
    correlationData: $("pub-correlation").value,
    messageExpiry: expiry === "" ? null : Number(expiry),
    userProperties: userProperties($("pub-user-props").value),
  };
  const result = $("pub-result");
  try {
    await post("publish", document);
    show(result, `Published to ${document.topic}`, true);
  } catch (error) {
    const body = error.body || {};
    result.className = "result error";
    result.replaceChildren(
      el("strong", {}, body.reason || "Refused"),
      " ",
      error.message,
      explanationBox(body.explanation),
    );
  }
}

// -- shadows ---------------------------------------------------------------------------------

const shadow = { thing: null, name: null };

async function loadThings() {
  try {
    const { things } = await api("things");
    $("shadow-things").replaceChildren(...things.map((name) => el("option", {}, name)));
  } catch {
    // the registry is optional for this page: a thing name can be typed
  }
}

function shadowBase() {
  const base = `$aws/things/${shadow.thing}/shadow`;
  return shadow.name ? `${base}/name/${shadow.name}` : base;
}

async function chooseThing(event) {
  event.preventDefault();
  shadow.thing = $("shadow-thing").value.trim();
  shadow.name = null;
  const list = await api(`shadows?${new URLSearchParams({ thingName: shadow.thing })}`);
  const names = [null, ...list.named];
  $("shadow-names").replaceChildren(
    ...names.map((name) =>
      el(
        "li",
        {},
        el(
          "button",
          { type: "button", class: "secondary", "data-shadow": name ?? "", onclick: () => chooseShadow(name) },
          name ?? "Classic shadow",
        ),
      ),
    ),
  );
  chooseShadow(null);
}

function chooseShadow(name) {
  shadow.name = name;
  $("shadow-title").textContent = name ? `Named shadow ${name}` : "Classic shadow";
  state.shadowTopic = `${shadowBase()}/#`;
  $("shadow-topic").textContent = state.shadowTopic;
  $("shadow-events").replaceChildren();
  openStream();
  loadShadow();
}

async function loadShadow() {
  const query = { thingName: shadow.thing };
  if (shadow.name) query.shadowName = shadow.name;
  const answer = await api(`shadow?${new URLSearchParams(query)}`);
  $("shadow-document").textContent = JSON.stringify(answer.document, null, 2);
  if (answer.accepted) {
    const desired = answer.document.state?.desired ?? {};
    $("shadow-desired").value = JSON.stringify(desired, null, 2);
  }
}

async function shadowAction(operation) {
  const result = $("shadow-result");
  const request = { operation, thingName: shadow.thing, shadowName: shadow.name };
  if (operation === "update") {
    try {
      request.document = { state: { desired: JSON.parse($("shadow-desired").value) } };
    } catch (error) {
      show(result, `The desired state is not JSON: ${error.message}`, false);
      return;
    }
  }
  try {
    const answer = await post("shadow", request);
    const text = answer.accepted
      ? `${operation} accepted (version ${answer.document.version ?? "-"})`
      : `${operation} rejected: ${answer.document.code} ${answer.document.message}`;
    show(result, text, answer.accepted);
  } catch (error) {
    show(result, error.message, false);
  }
  loadShadow();
}

// -- start -----------------------------------------------------------------------------------

function start() {
  for (const button of document.querySelectorAll("nav button")) {
    button.addEventListener("click", () => showPage(button.dataset.page));
  }
  $("log-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.log = {
      status: $("log-status").value,
      eventType: $("log-event").value.trim(),
      clientId: $("log-client").value.trim(),
      reason: $("log-reason").value.trim(),
    };
    openStream();
  });
  $("sub-form").addEventListener("submit", subscribe);
  $("pub-form").addEventListener("submit", publish);
  $("shadow-form").addEventListener("submit", chooseThing);
  $("shadow-update").addEventListener("click", () => shadowAction("update"));
  $("shadow-delete").addEventListener("click", () => shadowAction("delete"));
  showPage(location.hash.slice(1) || "overview");
  openStream();
  loadOverview();
  loadReasons();
  loadThings();
}

start();

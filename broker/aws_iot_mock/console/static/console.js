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
  if (name === "registry") loadRegistryPart();
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
  setLive(false);
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
  registry.arnPrefix = `arn:aws:iot:${overview.region}:${overview.accountId}:`;
  $("reg-auth-resources").placeholder = `${registry.arnPrefix}topic/demo/hello`;
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

// -- registry --------------------------------------------------------------------------------
// Every read and action is one control-plane operation (or a few), named on the page.

const registry = { part: "things", arnPrefix: "" };

function chooseRow(table, attribute, value) {
  for (const row of table.tBodies[0].rows) {
    row.classList.toggle("chosen", row.getAttribute(attribute) === value);
  }
}

function lines(text) {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
}

function showRegistryPart(name) {
  registry.part = name;
  for (const button of document.querySelectorAll("[data-registry]")) {
    button.classList.toggle("active", button.dataset.registry === name);
  }
  for (const part of document.querySelectorAll(".registry-part")) {
    part.hidden = part.id !== `reg-${name}`;
  }
  loadRegistryPart();
}

function loadRegistryPart() {
  const parts = {
    things: [loadRegistryThings, "reg-thing-result"],
    certificates: [loadCertificates, "reg-cert-status-result"],
    policies: [loadPolicies, "reg-auth-result"],
  };
  const [load, result] = parts[registry.part];
  load().catch((error) => show($(result), error.message, false));
}

async function loadRegistryThings() {
  const { things, nextToken } = await api("registry/things");
  $("reg-thing-names").replaceChildren(...things.map((thing) => el("option", {}, thing.thingName)));
  $("reg-thing-table").tBodies[0].replaceChildren(
    ...things.map((thing) =>
      el(
        "tr",
        { "data-thing": thing.thingName, onclick: () => showThing(thing.thingName) },
        el("td", {}, el("a", {}, thing.thingName)),
        el("td", {}, thing.thingTypeName ?? ""),
        el(
          "td",
          {},
          el(
            "code",
            {},
            Object.entries(thing.attributes ?? {})
              .map(([key, value]) => `${key}=${value}`)
              .join(" "),
          ),
        ),
        el("td", {}, thing.version ?? ""),
      ),
    ),
  );
  $("reg-things-more").hidden = !nextToken;
}

async function showThing(name) {
  chooseRow($("reg-thing-table"), "data-thing", name);
  $("reg-thing-title").textContent = `Thing ${name} (DescribeThing, ListThingPrincipals)`;
  try {
    const detail = await api(`registry/thing?${new URLSearchParams({ thingName: name })}`);
    $("reg-thing-detail").textContent = JSON.stringify(detail, null, 2);
  } catch (error) {
    $("reg-thing-detail").textContent = error.message;
  }
}

async function createThing(event) {
  event.preventDefault();
  const thingName = $("reg-thing-name").value.trim();
  const attributes = Object.fromEntries(userProperties($("reg-thing-attrs").value));
  try {
    await post("registry/things", { thingName, attributes });
    show($("reg-thing-result"), `Created thing ${thingName}`, true);
    await loadRegistryThings();
    showThing(thingName);
  } catch (error) {
    show($("reg-thing-result"), error.message, false);
  }
}

async function loadCertificates() {
  const { certificates, nextMarker } = await api("registry/certificates");
  $("reg-cert-table").tBodies[0].replaceChildren(
    ...certificates.map((certificate) => {
      const id = certificate.certificateId;
      const choice = el(
        "select",
        { "aria-label": `new status of ${id}` },
        ...["ACTIVE", "INACTIVE", "REVOKED"].map((status) =>
          status === certificate.status
            ? el("option", { selected: "" }, status)
            : el("option", {}, status),
        ),
      );
      return el(
        "tr",
        { "data-certificate-id": id },
        el("td", {}, el("a", { title: id, onclick: () => showCertificate(id) }, el("code", {}, `${id.slice(0, 12)}…`))),
        el("td", { class: `status-${certificate.status}` }, certificate.status),
        el("td", {}, new Date(certificate.creationDate).toLocaleString()),
        el(
          "td",
          {},
          choice,
          " ",
          el(
            "button",
            { type: "button", class: "secondary", onclick: () => setCertificateStatus(id, choice.value) },
            "Apply",
          ),
        ),
      );
    }),
  );
  $("reg-certs-more").hidden = !nextMarker;
}

async function showCertificate(id) {
  chooseRow($("reg-cert-table"), "data-certificate-id", id);
  $("reg-cert-title").textContent = `Certificate ${id.slice(0, 16)}… (DescribeCertificate)`;
  try {
    const detail = await api(`registry/certificate?${new URLSearchParams({ certificateId: id })}`);
    $("reg-cert-detail").textContent = JSON.stringify(detail, null, 2);
  } catch (error) {
    $("reg-cert-detail").textContent = error.message;
  }
}

async function setCertificateStatus(id, newStatus) {
  const result = $("reg-cert-status-result");
  try {
    const answer = await post("registry/certificate-status", { certificateId: id, newStatus });
    show(result, `Certificate ${id.slice(0, 16)}… is now ${answer.certificate.status}`, true);
  } catch (error) {
    show(result, error.message, false);
  }
  await loadCertificates();
}

function fileName(response, fallback) {
  const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return match ? match[1] : fallback;
}

async function createCertificate(event) {
  event.preventDefault();
  const result = $("reg-cert-result");
  const response = await fetch("/console/api/registry/certificates", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      thingName: $("reg-cert-thing").value.trim(),
      policyName: $("reg-cert-policy").value.trim(),
      setAsActive: $("reg-cert-active").checked,
    }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    show(result, body.message || response.statusText, false);
    return;
  }
  // The key exists only in this answer: hand it to the browser's downloads at once.
  const name = fileName(response, "device-bundle.zip");
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: name, hidden: "" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  result.className = "result ok";
  result.replaceChildren("Created; saved ", el("code", { id: "reg-cert-bundle" }, name), " (the only copy of its private key)");
  await loadCertificates();
}

async function loadPolicies() {
  const { policies } = await api("registry/policies");
  $("reg-policy-names").replaceChildren(...policies.map((policy) => el("option", {}, policy.policyName)));
  $("reg-policy-table").tBodies[0].replaceChildren(
    ...policies.map((policy) =>
      el(
        "tr",
        { "data-policy": policy.policyName, onclick: () => showPolicy(policy.policyName) },
        el("td", {}, el("a", {}, policy.policyName)),
        el("td", {}, el("code", {}, policy.policyArn)),
      ),
    ),
  );
}

async function showPolicy(name) {
  chooseRow($("reg-policy-table"), "data-policy", name);
  $("reg-policy-title").textContent = `Policy ${name} (GetPolicy)`;
  try {
    const { policy, targets } = await api(`registry/policy?${new URLSearchParams({ policyName: name })}`);
    let document = policy.policyDocument;
    try {
      document = JSON.stringify(JSON.parse(document), null, 2);
    } catch {
      // shown as stored
    }
    $("reg-policy-document").textContent = document;
    $("reg-policy-targets").textContent =
      `default version ${policy.defaultVersionId}; attached to ${targets.length ? targets.join(", ") : "nothing"}`;
    if (!$("reg-auth-add").value.trim()) $("reg-auth-add").value = name;
  } catch (error) {
    $("reg-policy-document").textContent = error.message;
  }
}

function policyList(title, listing) {
  const names = (listing?.policies ?? []).map((policy) => policy.policyName);
  return names.length ? el("div", {}, `${title}: `, el("code", {}, names.join(", "))) : null;
}

async function testAuthorization(event) {
  event.preventDefault();
  const result = $("reg-auth-result");
  try {
    const answer = await post("registry/test-authorization", {
      principal: $("reg-auth-principal").value.trim(),
      clientId: $("reg-auth-client").value.trim(),
      actionType: $("reg-auth-action").value,
      resources: lines($("reg-auth-resources").value),
      policyNamesToAdd: lines($("reg-auth-add").value),
    });
    result.className = "result";
    result.replaceChildren(
      ...answer.authResults.map((verdict) =>
        el(
          "div",
          { class: "auth-result" },
          el("span", { class: `verdict-${verdict.authDecision}`, "data-verdict": verdict.authDecision }, verdict.authDecision),
          " ",
          el("code", {}, `${verdict.authInfo.actionType} ${verdict.authInfo.resources.join(" ")}`),
          policyList("allowed by", verdict.allowed),
          policyList("explicitly denied by", verdict.denied?.explicitDeny),
          policyList("implicitly denied (evaluated)", verdict.denied?.implicitDeny),
        ),
      ),
    );
  } catch (error) {
    show(result, error.message, false);
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
  for (const button of document.querySelectorAll("[data-registry]")) {
    button.addEventListener("click", () => showRegistryPart(button.dataset.registry));
  }
  $("reg-refresh").addEventListener("click", loadRegistryPart);
  $("reg-thing-form").addEventListener("submit", createThing);
  $("reg-cert-form").addEventListener("submit", createCertificate);
  $("reg-auth-form").addEventListener("submit", testAuthorization);
  $("shadow-update").addEventListener("click", () => shadowAction("update"));
  $("shadow-delete").addEventListener("click", () => shadowAction("delete"));
  showPage(location.hash.slice(1) || "overview");
  openStream();
  loadOverview();
  loadReasons();
  loadThings();
}

start();

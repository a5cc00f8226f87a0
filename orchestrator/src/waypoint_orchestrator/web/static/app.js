// Waypoint's web page: plans a trip through the trip API, follows its events, shows the
// itinerary, confirms or cancels it. No framework, no build step.
//
// Two rules hold everywhere below:
// - Text from the API (tool output included: a restaurant may be named anything) is only ever
//   put on the page with `textContent` or as an attribute value, never parsed as HTML.
// - The API key goes only into the `Authorization` header of same-origin `fetch` calls; it is
//   never put into a URL. That is why the event stream is read with `fetch` and not with
//   `EventSource`, which cannot send headers.
"use strict";

(() => {
  const KEY_STORAGE = "waypoint.apiKey";
  const REFRESH_AFTER = new Set([
    "gate.failed",
    "gate.passed",
    "itinerary.ready",
    "trip.status",
    "trip.settled",
    "booking.made",
    "booking.failed",
    "compensation.done",
    "compensation.failed",
  ]);
  const CONFIRMABLE = new Set(["planned", "partial"]);
  const CANCELLABLE = new Set(["queued", "running", "planned", "partial", "over_budget", "booking", "booked"]);
  const STATUS_LABELS = {
    queued: "Queued",
    running: "Planning",
    needs_input: "Needs more information",
    planned: "Planned: confirm to book it",
    booking: "Booking",
    booked: "Booked",
    partial: "Planned, with something missing",
    over_budget: "Over budget",
    failed: "Failed",
    cancelled: "Cancelled",
  };
  // The problems' field names (the gate's, and the request schema's paths) and the form field
  // each is shown next to.
  const FIELD_INPUTS = {
    key: "api-key",
    query: "query",
    body: "query",
    origin: "origin",
    destination: "destination",
    start_date: "start_date",
    end_date: "end_date",
    days: "days",
    travelers: "travelers",
    budget: "budget_amount",
    "budget.amount": "budget_amount",
    "budget.currency": "budget_currency",
    dining: "dining_style",
    "dining.style": "dining_style",
    "dining.count": "dining_count",
    interests: "interests",
    cabin: "cabin",
    traveler_name: "traveler_name",
    book: "book",
  };
  const MAX_STREAM_RETRIES = 6;

  const $ = (id) => document.getElementById(id);
  const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
  const usd = (amount) => (typeof amount === "number" ? money.format(amount) : "");

  const state = {
    trip: null,
    lastEventId: "",
    follow: null, // the AbortController of the stream being read
    refreshTimer: null,
    pending: null, // { fingerprint, idempotencyKey } of a create whose answer never came
    problemsShown: null, // the id of the trip whose problems are on the form
  };

  // -- small DOM helpers (text only) ------------------------------------------------------------

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function clear(node) {
    node.replaceChildren();
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      if (signal) signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }

  function randomKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function formatDate(iso) {
    const [y, m, d] = String(iso).split("-").map(Number);
    if (!y || !m || !d) return String(iso);
    return new Date(y, m - 1, d).toLocaleDateString(undefined, {
      weekday: "short",
      day: "numeric",
      month: "short",
    });
  }

  function formatLocalTime(text) {
    // "2026-03-10T07:35:00-08:00": the time as the airport has it, without converting it.
    const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(String(text));
    return match ? `${formatDate(match[1])} ${match[2]}` : String(text);
  }

  // -- the API key -------------------------------------------------------------------------------

  function storedKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || "";
    } catch {
      return "";
    }
  }

  function rememberKey(key) {
    try {
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // Storage refused (private mode): the key stays in the field only.
    }
  }

  function currentKey() {
    return $("api-key").value.trim();
  }

  // -- calling the API ---------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem, retryAfter) {
      super((problem && problem.detail) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem || {};
      this.retryAfter = retryAfter;
    }
  }

  function authHeaders(extra) {
    return { Authorization: `Bearer ${currentKey()}`, ...(extra || {}) };
  }

  async function api(method, path, { body, headers, signal } = {}) {
    const init = {
      method,
      headers: authHeaders({ Accept: "application/json", ...(headers || {}) }),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
      signal,
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"));
    return data;
  }

  // -- problems, each by its field ---------------------------------------------------------------

  function inputFor(field) {
    let name = String(field || "");
    while (name) {
      if (FIELD_INPUTS[name]) return $(FIELD_INPUTS[name]);
      const dot = name.lastIndexOf(".");
      if (dot < 0) break;
      name = name.slice(0, dot);
    }
    return null;
  }

  function labelOf(input) {
    const label = input.labels && input.labels[0];
    return label ? label.textContent.trim() : input.id;
  }

  function clearProblems() {
    for (const node of document.querySelectorAll("#trip-form .problem")) {
      node.textContent = "";
      show(node, false);
    }
    for (const node of document.querySelectorAll("#trip-form [aria-invalid]")) {
      node.removeAttribute("aria-invalid");
    }
    clear($("problem-list"));
    show($("problem-summary"), false);
  }

  // problems: [{ field, message }]. Each is written next to its field (the field marked invalid
  // and described by it); those without a field of the form go to the form's own line.
  function showProblems(problems, { focus = true } = {}) {
    clearProblems();
    const list = $("problem-list");
    const general = [];
    let first = null;
    for (const { field, message } of problems) {
      const input = inputFor(field);
      if (!input) {
        general.push(field && field !== "body" ? `${field}: ${message}` : message);
        continue;
      }
      const slot = $(`${input.id}-problem`);
      slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
      show(slot, true);
      input.setAttribute("aria-invalid", "true");
      const details = input.closest("details");
      if (details) details.open = true;
      const item = el("li");
      const link = el("a", `${labelOf(input)}: ${message}`);
      link.href = `#${input.id}`;
      link.addEventListener("click", (event) => {
        event.preventDefault();
        input.focus();
      });
      item.append(link);
      list.append(item);
      first = first || input;
    }
    if (general.length) {
      $("form-problem").textContent = general.join(" ");
      show($("form-problem"), true);
      for (const message of general) list.append(el("li", message));
    }
    if (problems.length) {
      show($("problem-summary"), true);
      if (focus) $("problem-summary").focus();
    }
    return first;
  }

  function problemsOf(error) {
    const problem = error.problem || {};
    const wait = error.retryAfter ? ` (try again in ${error.retryAfter} s)` : "";
    if (error.status === 401 || error.status === 403) {
      return [{ field: "key", message: problem.detail || "the API key was refused" }];
    }
    if (Array.isArray(problem.errors) && problem.errors.length && error.status === 422) {
      return problem.errors.map((e) => ({ field: e.field, message: e.message }));
    }
    return [{ field: "", message: (problem.detail || error.message) + wait }];
  }

  // -- the request -------------------------------------------------------------------------------

  function text(id) {
    return $(id).value.trim();
  }

  function number(id, problems, field) {
    const input = $(id);
    if (input.validity && input.validity.badInput) {
      problems.push({ field, message: "must be a number" });
      return undefined;
    }
    return input.value === "" ? undefined : Number(input.value);
  }

  // The request body from the form, and the problems found before sending it (only what the
  // browser itself cannot turn into JSON; the API checks everything else).
  function requestBody() {
    const problems = [];
    const body = {};
    const put = (name, value) => {
      if (value !== undefined && value !== "") body[name] = value;
    };
    put("query", text("query"));
    put("origin", text("origin"));
    put("destination", text("destination"));
    put("start_date", $("start_date").value);
    put("end_date", $("end_date").value);
    put("days", number("days", problems, "days"));
    put("travelers", number("travelers", problems, "travelers"));
    const amount = number("budget_amount", problems, "budget.amount");
    const currency = text("budget_currency");
    if (amount !== undefined || currency) {
      body.budget = {};
      if (amount !== undefined) body.budget.amount = amount;
      if (currency) body.budget.currency = currency;
    }
    const style = $("dining_style").value;
    const count = number("dining_count", problems, "dining.count");
    if (style || count !== undefined) {
      body.dining = {};
      if (style) body.dining.style = style;
      if (count !== undefined) body.dining.count = count;
    }
    const interests = text("interests")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (interests.length) body.interests = interests;
    put("cabin", $("cabin").value);
    put("traveler_name", text("traveler_name"));
    if ($("book").checked) body.book = true;
    return { body, problems };
  }

  function checkKey() {
    const key = currentKey();
    if (!key) return "enter your API key";
    if (!/^[\x21-\x7e]+$/.test(key)) return "this is not an API key (they look like wpk_…, without spaces)";
    return null;
  }

  async function submitTrip(event) {
    event.preventDefault();
    clearProblems();
    const keyProblem = checkKey();
    const { body, problems } = requestBody();
    if (keyProblem) problems.unshift({ field: "key", message: keyProblem });
    if (problems.length) {
      showProblems(problems);
      return;
    }
    rememberKey(currentKey());
    // The same body retried after an answer that never came keeps its Idempotency-Key: the
    // API then answers with the trip it may have stored, instead of making a second one.
    const fingerprint = JSON.stringify(body);
    if (!state.pending || state.pending.fingerprint !== fingerprint) {
      state.pending = { fingerprint, idempotencyKey: randomKey() };
    }
    const submit = $("submit");
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    try {
      const trip = await api("POST", "/v1/trips", {
        body,
        headers: { "Idempotency-Key": state.pending.idempotencyKey },
      });
      state.pending = null;
      startTrip(trip);
    } catch (error) {
      if (error instanceof ApiError) {
        state.pending = null;
        showProblems(problemsOf(error));
      } else {
        showProblems([{ field: "", message: "The server could not be reached; try again." }]);
      }
    } finally {
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
    }
  }

  // -- following a trip --------------------------------------------------------------------------

  function startTrip(trip) {
    stopFollowing();
    state.trip = null;
    state.lastEventId = "";
    clear($("progress"));
    $("action-problem").textContent = "";
    show($("action-problem"), false);
    renderTrip(trip);
    show($("trip"), true);
    $("trip-heading").focus();
    follow(trip.id);
  }

  function stopFollowing() {
    if (state.follow) state.follow.abort();
    state.follow = null;
    clearTimeout(state.refreshTimer);
  }

  // Reads the trip's events until the stream ends (the trip has settled), reconnecting with
  // Last-Event-ID after a dropped connection so that no event is missed or seen twice.
  async function follow(tripId) {
    stopFollowing();
    const controller = new AbortController();
    state.follow = controller;
    const { signal } = controller;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const headers = authHeaders({ Accept: "text/event-stream" });
        if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
        const response = await fetch(`/v1/trips/${encodeURIComponent(tripId)}/events`, {
          headers,
          signal,
          cache: "no-store",
          credentials: "omit",
          referrerPolicy: "no-referrer",
        });
        if (!response.ok) {
          let problem = null;
          try {
            problem = await response.json();
          } catch {
            problem = null;
          }
          const error = new ApiError(response.status, problem, response.headers.get("Retry-After"));
          if (response.status !== 429 && response.status < 500) throw error;
          failures += 1;
          if (failures > MAX_STREAM_RETRIES) throw error;
          await sleep(1000 * Number(error.retryAfter || 2), signal);
          continue;
        }
        await readEvents(response.body, signal, (event) => {
          failures = 0;
          onEvent(tripId, event);
        });
        break; // the stream ended: the trip has settled
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError) {
          actionProblem(`Progress stopped: ${error.message}`);
          break;
        }
        failures += 1;
        if (failures > MAX_STREAM_RETRIES) {
          actionProblem("Progress stopped: the connection keeps dropping. The trip goes on; reload to see it.");
          break;
        }
        await sleep(Math.min(500 * 2 ** failures, 8000), signal);
      }
    }
    if (!signal.aborted) await refresh(tripId);
    if (state.follow === controller) state.follow = null;
  }

  // A server-sent event stream parser (the WHATWG rules: `event`, `data`, `id` fields, comment
  // lines starting with ':', a blank line ends an event).
  async function readEvents(stream, signal, onMessage) {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    const abort = () => reader.cancel().catch(() => {});
    signal.addEventListener("abort", abort, { once: true });
    let buffer = "";
    let skipNewline = false; // the chunk before ended in "\r", maybe the first half of "\r\n"
    let type = "";
    let data = [];
    let id = null;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        if (skipNewline && buffer.startsWith("\n")) buffer = buffer.slice(1);
        skipNewline = buffer.endsWith("\r");
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        for (const line of lines) {
          if (line === "") {
            if (id !== null) state.lastEventId = id;
            if (data.length) onMessage({ type: type || "message", data: data.join("\n"), id });
            type = "";
            data = [];
            id = null;
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          let field = colon < 0 ? "" : line.slice(colon + 1);
          if (field.startsWith(" ")) field = field.slice(1);
          if (name === "event") type = field;
          else if (name === "data") data.push(field);
          else if (name === "id" && !field.includes("\0")) id = field;
        }
      }
    } finally {
      signal.removeEventListener("abort", abort);
    }
  }

  function onEvent(tripId, event) {
    let data = {};
    try {
      data = JSON.parse(event.data) || {};
    } catch {
      data = {};
    }
    addProgress(event.type, data, event.id);
    if (REFRESH_AFTER.has(event.type)) {
      clearTimeout(state.refreshTimer);
      state.refreshTimer = setTimeout(() => refresh(tripId), 150);
    }
  }

  async function refresh(tripId) {
    try {
      const trip = await api("GET", `/v1/trips/${encodeURIComponent(tripId)}`);
      if (!state.trip || state.trip.id === trip.id) renderTrip(trip);
    } catch (error) {
      if (error instanceof ApiError) actionProblem(error.message);
    }
  }

  function stepName(step) {
    const names = {
      search_flights: "flight search",
      search_hotels: "hotel search",
      get_forecast: "weather forecast",
      choose: "choosing the best combination",
      summarize: "writing the itinerary",
      book_flight: "booking the flight",
      book_hotel: "booking the hotel",
    };
    const s = String(step || "");
    if (names[s]) return names[s];
    if (s.startsWith("search_restaurants_")) return `restaurant search ${s.slice(19)}`;
    if (s.startsWith("reserve_table_")) return `reserving table ${s.slice(14)}`;
    return s;
  }

  function describe(type, d) {
    switch (type) {
      case "trip.accepted":
        return "Request accepted";
      case "router.decided":
        return d.kind === "unsupported" ? `Not something Waypoint plans: ${d.reason}` : `Read the request: ${d.reason}`;
      case "gate.passed":
        return "Everything the plan needs is there";
      case "gate.failed":
        return `More information needed (${(d.problems || []).length} problem(s))`;
      case "plan.created":
        return `Plan made: ${(d.steps || []).length} steps`;
      case "plan.extended":
        return `Bookings planned: ${(d.steps || []).length} steps`;
      case "step.started":
        return `Started ${stepName(d.step)}`;
      case "step.retried":
        return `Retrying ${stepName(d.step)} (attempt ${d.attempt} failed: ${d.error})`;
      case "step.finished":
        return `Done, ${stepName(d.step)}${d.summary ? `: ${d.summary}` : ""}`;
      case "step.failed":
        return `Failed: ${stepName(d.step)}${d.error ? ` (${d.error})` : ""}`;
      case "step.degraded":
        return `Going on without it: ${d.warning || stepName(d.step)}`;
      case "itinerary.ready":
        return `Itinerary ready: ${d.summary || ""}`;
      case "trip.confirmed":
        return "Confirmed: booking now";
      case "booking.made":
        return `Booked the ${d.kind} (${usd(d.amount_usd)})`;
      case "booking.failed":
        return `Could not book the ${d.kind}${d.warning ? `: ${d.warning}` : ""}`;
      case "compensation.done":
        return `Undid the ${d.kind} booking`;
      case "compensation.failed":
        return `Could not undo the ${d.kind} booking${d.error ? `: ${d.error}` : ""}`;
      case "budget.exhausted":
        return `The trip's ${d.budget} budget is spent`;
      case "spend.refused":
        return `Not booked: ${usd(d.amount_usd)} is over this key's daily booking spend`;
      case "trip.cancel_requested":
        return "Cancel requested";
      case "trip.status":
        return `Status: ${STATUS_LABELS[d.status] || d.status}`;
      case "trip.settled":
        return `Finished: ${STATUS_LABELS[d.status] || d.status}${d.detail ? ` (${d.detail})` : ""}`;
      default:
        return type;
    }
  }

  function addProgress(type, data, id) {
    const item = el("li");
    item.dataset.event = type;
    if (id) item.dataset.id = id;
    item.append(el("span", describe(type, data), "what"), " ", el("code", type, "event-type"));
    $("progress").append(item);
  }

  function actionProblem(message) {
    $("action-problem").textContent = message;
    show($("action-problem"), Boolean(message));
  }

  // -- confirm and cancel ------------------------------------------------------------------------

  async function command(action) {
    const trip = state.trip;
    if (!trip) return;
    if (action === "cancel" && trip.status === "booked") {
      // eslint-disable-next-line no-alert
      if (!window.confirm("Cancel this trip? Every booking it made is cancelled.")) return;
    }
    actionProblem("");
    const button = $(action);
    button.disabled = true;
    try {
      const updated = await api("POST", `/v1/trips/${encodeURIComponent(trip.id)}/${action}`);
      renderTrip(updated);
      follow(updated.id); // on from the last event seen (Last-Event-ID)
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        showProblems(problemsOf(error), { focus: false });
        actionProblem(error.message);
      } else {
        actionProblem(error instanceof ApiError ? error.message : "The server could not be reached; try again.");
      }
    } finally {
      button.disabled = false;
    }
  }

  // -- showing a trip ----------------------------------------------------------------------------

  function renderTrip(trip) {
    state.trip = trip;
    const status = $("status");
    status.textContent = STATUS_LABELS[trip.status] || trip.status;
    status.dataset.status = trip.status;
    document.title = `${STATUS_LABELS[trip.status] || trip.status} · Waypoint`;
    const end = trip.termination;
    let why = end && end.reason !== "done" && end.detail ? end.detail : "";
    if (trip.status === "needs_input" && trip.problems && trip.problems.length) {
      why = "each thing to change is shown by its field in the form above";
    }
    $("termination").textContent = why;
    renderTrace(trip);
    show($("confirm"), CONFIRMABLE.has(trip.status) && !trip.cancel_requested);
    show($("cancel"), CANCELLABLE.has(trip.status) && !trip.cancel_requested);

    if (trip.status === "needs_input" && trip.problems && trip.problems.length && state.problemsShown !== trip.id) {
      // Each problem next to its field; the summary above the form takes the focus once.
      state.problemsShown = trip.id;
      showProblems(trip.problems.map((p) => ({ field: p.field, message: p.reason })));
    }
    renderList($("warnings"), $("warnings-section"), trip.warnings || [], (w) => el("li", w));
    renderItinerary(trip.itinerary);
    renderList($("bookings"), $("bookings-section"), trip.bookings || [], (b) => {
      const item = el("li");
      item.dataset.kind = b.kind;
      item.dataset.bookingStatus = b.status;
      item.append(
        el("strong", b.status === "confirmed" ? "Booked" : "Cancelled"),
        ` ${b.kind}: ${b.description} · ${usd(b.amount_usd)} · `,
        el("code", b.booking_id),
      );
      return item;
    });
  }

  function renderList(list, section, items, make) {
    clear(list);
    for (const item of items) list.append(make(item));
    show(section, items.length > 0);
  }

  function renderTrace(trip) {
    const link = $("trace-link");
    let url = null;
    try {
      const parsed = trip.trace_url ? new URL(trip.trace_url) : null;
      if (parsed && (parsed.protocol === "http:" || parsed.protocol === "https:")) url = parsed.href;
    } catch {
      url = null;
    }
    if (url) link.href = url;
    else link.removeAttribute("href");
    show(link, Boolean(url));
    $("trace-id").textContent = trip.trace_id || "";
    show($("trace-id-line"), Boolean(trip.trace_id));
    show($("trace"), Boolean(url || trip.trace_id));
  }

  function renderItinerary(itinerary) {
    show($("itinerary"), Boolean(itinerary));
    if (!itinerary) return;
    $("narrative").textContent = itinerary.narrative || itinerary.summary || "";

    const days = $("itinerary-days");
    clear(days);
    for (const day of itinerary.days || []) {
      const item = el("li", null, "day");
      item.dataset.date = day.date;
      const heading = el("h4");
      heading.append(el("span", `Day ${day.day} · ${formatDate(day.date)}`, "when"), " ", el("span", day.title));
      item.append(heading);
      const tags = el("p", null, "tags");
      if (day.hike) tags.append(el("span", "Hike", "tag hike"));
      if (day.dinner) tags.append(el("span", "Dinner", "tag dinner"));
      if (tags.childNodes.length) item.append(tags);
      const weather = el("p", null, "weather");
      weather.append(el("span", "Weather: ", "label"), day.weather || "no forecast");
      item.append(weather);
      const activities = el("ul", null, "activities");
      for (const activity of day.activities || []) activities.append(el("li", activity));
      item.append(activities);
      days.append(item);
    }

    const items = $("items");
    clear(items);
    const flight = itinerary.flight;
    if (flight) {
      const item = el("li", null, "item flight");
      item.append(el("strong", "Flight: "), `${flight.carrier}, ${flight.cabin.replace("_", " ")} · ${usd(flight.total_price)}`);
      const legs = el("ul");
      for (const slice of flight.slices || []) {
        const stops = slice.stops ? `${slice.stops} stop(s) via ${slice.via.join(", ")}` : "non-stop";
        legs.append(
          el(
            "li",
            `${slice.origin} → ${slice.destination}: ${formatLocalTime(slice.departure_local)} to ` +
              `${formatLocalTime(slice.arrival_local)}, ${stops} (${slice.flight_numbers.join(", ")})`,
          ),
        );
      }
      item.append(legs);
      items.append(item);
    }
    const hotel = itinerary.hotel;
    if (hotel) {
      const item = el("li", null, "item hotel");
      item.append(
        el("strong", "Hotel: "),
        `${hotel.name}, ${hotel.stars}★, rated ${hotel.rating}/10 · ${hotel.nights} night(s), ` +
          `${hotel.rooms} room(s) · ${usd(hotel.total_price)}`,
      );
      items.append(item);
    }
    for (const dinner of itinerary.dinners || []) {
      const r = dinner.restaurant;
      const item = el("li", null, "item dinner");
      item.append(
        el("strong", "Dinner: "),
        `${r.name} (${r.cuisine}, ${"$".repeat(r.price_level)}, rated ${r.rating}/5) · ` +
          `${formatDate(dinner.date)} at ${dinner.time} · about ${usd(dinner.estimated_cost_usd)}`,
      );
      items.append(item);
    }

    const budget = itinerary.budget || {};
    const lines = $("budget-lines");
    clear(lines);
    for (const line of budget.lines || []) {
      const row = el("tr");
      row.append(el("td", line.item), el("td", usd(line.amount_usd), "num"));
      lines.append(row);
    }
    const totals = $("budget-totals");
    clear(totals);
    const total = (label, amount, className) => {
      const row = el("tr", null, className);
      const head = el("th", label);
      head.scope = "row";
      row.append(head, el("td", usd(amount), "num"));
      totals.append(row);
    };
    total("Total", budget.total_usd, "total");
    if (typeof budget.budget_usd === "number") total("Your budget", budget.budget_usd, "limit");
    if (typeof budget.remaining_usd === "number") total("Left over", budget.remaining_usd, "remaining");
    if (typeof budget.shortfall_usd === "number" && budget.shortfall_usd > 0) {
      total("Over budget by", budget.shortfall_usd, "shortfall");
    }
  }

  // -- wiring ------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    const key = $("api-key");
    key.value = storedKey();
    key.addEventListener("change", () => rememberKey(currentKey()));
    $("forget-key").addEventListener("click", () => {
      key.value = "";
      rememberKey("");
      key.focus();
    });
    $("trip-form").addEventListener("submit", submitTrip);
    // A field that is being changed no longer shows its problem.
    $("trip-form").addEventListener("input", (event) => {
      const input = event.target;
      if (!input.id || !input.hasAttribute("aria-invalid")) return;
      input.removeAttribute("aria-invalid");
      const slot = $(`${input.id}-problem`);
      if (slot) {
        slot.textContent = "";
        show(slot, false);
      }
    });
    $("confirm").addEventListener("click", () => command("confirm"));
    $("cancel").addEventListener("click", () => command("cancel"));
    document.body.dataset.ready = "true";
  });
})();

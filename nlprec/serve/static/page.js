// The model page of `nlprec serve`: one section per served model, a form per operation.
// Every answer comes from the JSON routes clients call (the routes listed by /v1/models); an
// error answer is shown as the one line its {"error": ...} carries. URLs are relative to the
// page's <base href>, which the server sets from its root path (--root-path). The API key is
// kept in this script's memory only.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const session = { key: "" };

  class ApiError extends Error {}

  /** POST `body` (or GET without one) to a route of /v1/models ("/v1/..."), relative to <base>. */
  async function callApi(route, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (session.key) headers.Authorization = `Bearer ${session.key}`;
    let response;
    try {
      response = await fetch(route.replace(/^\/+/, ""), {
        method: body === undefined ? "GET" : "POST", headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(`cannot reach the server (${err.message})`);
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      // not JSON (e.g. a proxy's error page): the status is all there is to show
    }
    if (!response.ok) {
      throw new ApiError(data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`);
    }
    return data;
  }

  /** An element with attributes ("text" sets its text) and children (strings become text). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "text") node.textContent = value;
      else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const fixed = (value, digits = 4) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));
  const number = (value) => (value === "" ? null : Number(value));

  function field(label, input) {
    return el("label", { class: "field" }, el("span", { text: label }), input);
  }

  /** A form for one operation: `run(values)` returns the node that shows the answer. */
  function operationForm(op, title, fields, run) {
    const result = el("div", { class: "result", "aria-live": "polite" });
    const form = el("form", { class: "op", "data-op": op, "data-calls": "0" },
      el("h3", { text: title }), el("div", { class: "fields" }, ...fields, el("button", { type: "submit", text: "Ask" })),
      result);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      form.dataset.state = "busy";
      result.replaceChildren(el("p", { class: "busy", text: "…" }));
      try {
        result.replaceChildren(await run(Object.fromEntries(new FormData(form).entries())));
      } catch (err) {
        result.replaceChildren(el("p", { class: "error", role: "alert", text: err.message }));
      } finally {
        form.dataset.state = "done";
        form.dataset.calls = String(Number(form.dataset.calls) + 1);
      }
    });
    return form;
  }

  /** The route of `model` that contains `part` (e.g. "/similar", "/v1/translate/"). */
  function route(model, part) {
    const found = model.routes.find((one) => one.includes(part));
    if (!found) throw new ApiError(`model ${model.name} has no ${part} route on this server`);
    return found;
  }
  const textInput = (name, placeholder, value = "") => el("input", { name, placeholder, value, type: "text" });
  const numberInput = (name, value, min = 1, max = null) => el("input", { name, value, min, max, type: "number", step: 1 });
  const textArea = (name, placeholder, value = "") => el("textarea", { name, placeholder, rows: 2, text: value });

  // --- word vectors -------------------------------------------------------------------------

  function scoredList(rows) {
    return el("ol", { class: "ranked" }, ...rows.map((row) =>
      el("li", {}, el("span", { class: "word", text: row.word }), el("span", { class: "score", text: fixed(row.score) }))));
  }

  /** The query and its neighbours on their two principal components, as SVG. */
  function wordMap(points) {
    const width = 440, height = 300, pad = 30, labelRoom = 90;  // room on the right for the last labels
    const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
    const span = (values) => Math.max(...values) - Math.min(...values) || 1;
    const sx = (x) => pad + ((x - Math.min(...xs)) / span(xs)) * (width - pad - labelRoom);
    const sy = (y) => height - pad - ((y - Math.min(...ys)) / span(ys)) * (height - 2 * pad);
    const map = svg("svg", { class: "word-map", viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `PCA map of ${points[0].word} and its neighbours` });
    points.forEach((p, i) => {
      const group = svg("g", { class: i === 0 ? "point query" : "point" });
      group.append(svg("title", {}, i === 0 ? `${p.word} (query)` : `${p.word}: cosine ${fixed(p.score)}`));
      group.append(svg("circle", { cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: i === 0 ? 6 : 4 }));
      group.append(svg("text", { x: (sx(p.x) + 8).toFixed(1), y: (sy(p.y) + 4).toFixed(1) }, p.word));
      map.append(group);
    });
    return el("figure", {}, map, el("figcaption", { text: "PCA of the query and its neighbours (2 components)" }));
  }

  function vectorForms(model) {
    const similar = operationForm("similar", "Nearest words", [
      field("word", textInput("word", "a word")), field("k", numberInput("k", 10)),
    ], async ({ word, k }) => {
      const [answer, map] = await Promise.all([
        callApi(route(model, "/similar"), { words: [word], k: number(k) }),
        callApi(route(model, "/map"), { word, k: number(k) }),
      ]);
      return el("div", { class: "columns" }, scoredList(answer.results[0]), wordMap(map.points));
    });
    const analogy = operationForm("analogy", "Analogy a : b :: c : ?", [
      field("a", textInput("a", "man")), field("b", textInput("b", "king")), field("c", textInput("c", "woman")),
      field("k", numberInput("k", 5)),
      field("method", el("select", { name: "method" }, el("option", { text: "3cosadd" }), el("option", { text: "3cosmul" }))),
    ], async ({ a, b, c, k, method }) => {
      const answer = await callApi(route(model, "/analogy"), { a, b, c, k: number(k), method });
      return scoredList(answer.results);
    });
    return [similar, analogy];
  }

  // --- recommenders -------------------------------------------------------------------------

  function itemTable(className, rows, valueName, value) {
    const titled = rows.some((row) => row.title !== undefined);
    const head = el("tr", {}, el("th", { text: "#" }), el("th", { text: "item" }),
      titled ? el("th", { text: "title" }) : null, el("th", { text: valueName }));
    return el("table", { class: className }, el("thead", {}, head), el("tbody", {}, ...rows.map((row, i) =>
      el("tr", {}, el("td", { text: String(i + 1) }), el("td", { class: "item", text: row.item }),
        titled ? el("td", { class: "title", text: row.title || "" }) : null,
        el("td", { class: "value", text: value(row) })))));
  }

  function recommenderForms(model) {
    const form = operationForm("recommend", "Recommendations for a user", [
      field("user", textInput("user", "a user id")), field("k", numberInput("k", 10)),
      field("leave out seen items", el("input", { type: "checkbox", name: "exclude_seen", checked: true })),
    ], async ({ user, k, exclude_seen: excludeSeen }) => {
      const answer = (await callApi(route(model, "/recommend"),
        { users: [user], k: number(k), exclude_seen: excludeSeen === "on", history: 50 })).results[0];
      return el("div", {},
        answer.notice ? el("p", { class: "notice", text: answer.notice }) : null,
        el("div", { class: "columns" },
          el("div", {}, el("h4", { text: `Top ${answer.items.length} (${answer.source})` }),
            itemTable("top-items", answer.items, "score", (row) => fixed(row.score))),
          el("div", {}, el("h4", { text: `History (${answer.history.length} shown)` }),
            itemTable("history", answer.history, "rating", (row) => (row.rating === null ? "seen" : fixed(row.rating, 1))))));
    });
    return [form];
  }

  // --- translators --------------------------------------------------------------------------

  /** Attention weights as a table: one row per output piece, one column per source piece. */
  function heatMap(attention) {
    if (!attention) return el("p", { class: "notice", text: "no attention: the sentence has no source pieces" });
    const head = el("tr", {}, el("th", {}), ...attention.source.map((piece) => el("th", { class: "src", text: piece })));
    const rows = attention.weights.map((row, t) => el("tr", {}, el("th", { text: attention.target[t] }),
      ...row.map((weight, s) => {
        const cell = el("td", { title: `${attention.target[t]} → ${attention.source[s]}: ${fixed(weight, 3)}`,
          "data-weight": String(weight) });
        cell.style.backgroundColor = `rgba(33, 102, 172, ${Math.min(1, Math.max(0, weight)).toFixed(3)})`;
        return cell;
      })));
    return el("figure", {}, el("table", { class: "heatmap" }, el("thead", {}, head), el("tbody", {}, ...rows)),
      el("figcaption", { text: "cross-attention of the chosen output (last decoder layer, mean over heads)" }));
  }

  function translatorForms(model) {
    const form = operationForm("translate", "Translate", [
      field("text", textArea("text", "a sentence")), field("beam", numberInput("beam", 5, 1, 16)),
      field("n-best", numberInput("nbest", 3, 1, 16)),
    ], async ({ text, beam, nbest }) => {
      const hypotheses = (await callApi(route(model, "/v1/translate/"),
        { texts: [text], beam: number(beam), nbest: number(nbest), attention: true })).results[0];
      const map = el("div", { class: "attention" });
      const list = el("ol", { class: "hypotheses" }, ...hypotheses.map((h, i) => {
        const choose = el("input", { type: "radio", name: "chosen", value: String(i), checked: i === 0 });
        choose.addEventListener("change", () => map.replaceChildren(heatMap(h.attention)));
        return el("li", {}, el("label", {}, choose, el("span", { class: "text", text: h.text }),
          el("span", { class: "score", text: fixed(h.score) })));
      }));
      map.replaceChildren(heatMap(hypotheses[0].attention));
      return el("div", {}, list, map);
    });
    return [form];
  }

  // --- classifiers --------------------------------------------------------------------------

  function classifierForms(model) {
    const form = operationForm("classify", "Classify", [field("text", textArea("text", "a text to classify"))],
      async ({ text }) => {
        const answer = await callApi(route(model, "/v1/classify/"), { texts: [text] });
        const prediction = answer.predictions[0];
        return el("div", { class: "bars" }, el("p", {}, "predicted: ", el("strong", { class: "label", text: prediction.label })),
          ...answer.classes.map((name) => {
            const p = prediction.probabilities[name];
            const fill = el("div", { class: "bar-fill" });
            fill.style.width = `${(100 * p).toFixed(1)}%`;
            return el("div", { class: name === prediction.label ? "bar top" : "bar", "data-class": name },
              el("span", { class: "class", text: name }), el("div", { class: "bar-track" }, fill),
              el("span", { class: "probability", text: fixed(p) }));
          }));
      });
    return [form];
  }

  // --- BERT fill-mask -----------------------------------------------------------------------

  function fillMaskForms(model) {
    const form = operationForm("fill", "Fill the [MASK]", [
      field("text", textArea("text", "text with [MASK]", "the [MASK] sat on the mat.")), field("k", numberInput("k", 5)),
    ], async ({ text, k }) => {
      const answer = (await callApi(route(model, "/v1/fill-mask/"), { texts: [text], k: number(k) })).results[0];
      return el("div", {}, el("p", { class: "filled", text: answer.filled }),
        el("div", { class: "columns" }, ...answer.masks.map((guesses, i) => el("div", { class: "mask" },
          el("h4", { text: `[MASK] ${i + 1}` }),
          el("ol", { class: "ranked" }, ...guesses.map((g) => el("li", {},
            el("span", { class: "piece", text: g.piece }), el("span", { class: "probability", text: fixed(g.probability) }))))))));
    });
    return [form];
  }

  // --- the list of models -------------------------------------------------------------------

  const FORMS = { embeddings: vectorForms, recommender: recommenderForms, translation: translatorForms,
    classifier: classifierForms, bert: fillMaskForms };

  function provenance(model) {
    const rows = Object.entries(model.provenance || {}).map(([key, value]) => [el("dt", { text: key }),
      el("dd", {}, value !== null && typeof value === "object" ? el("pre", { text: JSON.stringify(value, null, 1) })
        : String(value))]);
    return el("details", { class: "provenance" }, el("summary", { text: "Provenance" }), el("dl", {}, ...rows.flat()));
  }

  function modelSection(model) {
    const forms = FORMS[model.kind];
    return el("section", { class: "model", id: `model-${model.name}`, "data-model": model.name, "data-kind": model.kind },
      el("h2", {}, model.name, " ", el("span", { class: "kind", text: model.kind })),
      el("p", { class: "meta", text: `${model.path} · loaded ${model.loaded_at} · ${model.routes.join(", ")}` }),
      provenance(model),
      ...(forms ? forms(model) : [el("p", { class: "notice", text: `No form for ${model.kind} models; see the API docs.` })]));
  }

  async function loadModels() {
    const status = document.getElementById("status");
    const list = document.getElementById("models");
    status.classList.remove("error");
    status.textContent = "Loading the served models…";
    try {
      const answer = await callApi("/v1/models");
      list.replaceChildren(...answer.models.map(modelSection));
      status.textContent = `${answer.models.length} models served`;
    } catch (err) {
      list.replaceChildren();
      status.classList.add("error");
      status.textContent = err.message;
    }
    document.body.dataset.ready = "true";
  }

  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    session.key = document.getElementById("api-key").value.trim();
    loadModels();
  });
  loadModels();
})();

"""The model page and the API docs in a real browser: Debian's chromium driven by Selenium through
Debian's chromedriver (nothing is downloaded), against a real `nlprec serve` on 127.0.0.1 with a
tiny trained model of every kind.

The browser resolves no host name but 127.0.0.1 (--host-resolver-rules), and every test reads
the DevTools network log: any request to another origin, any failed load and any console error
fails it. Each form's answer is compared with what the JSON route answers for the same input
(httpx). Skipped where chromium or chromedriver is not installed (apt-get install chromium
chromium-driver).

NLPREC_PAGE_SCREENSHOT=docs/serve-page.png also saves a screenshot of the filled-in page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium (the dev extra)")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("the browser tests need Debian's chromium and chromium-driver: apt-get install chromium "
                "chromium-driver", allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

KEY = "browser-key"
WAIT_S = 30


# --- the server and the browser ------------------------------------------------------------


@pytest.fixture(scope="module")
def served(start_server, vectors_path, titled_mf_dir, translator_dir, classifier_dir, bert_dir, index_cache):
    """One model of every kind behind one real server."""
    running = start_server(["--model", f"words={vectors_path}", "--model", f"rec={titled_mf_dir}",
                            "--model", f"fr={translator_dir}", "--model", f"cls={classifier_dir}",
                            "--model", f"bert={bert_dir}"], cache=index_cache)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions", "--window-size=1280,1800",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                 # No name resolves but 127.0.0.1's: a request to any other host cannot leave the machine.
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


class Logs:
    """What the browser did since the last read: requests, failed loads, statuses, console lines."""

    def __init__(self, driver) -> None:
        self.console = driver.get_log("browser")
        self.requests, self.failed, self.statuses = [], [], {}
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])
            elif message["method"] == "Network.loadingFailed":
                self.failed.append(params)
            elif message["method"] == "Network.responseReceived":
                self.statuses[params["response"]["url"]] = params["response"]["status"]

    def check(self, origin: str, allow_4xx: bool = False) -> None:
        """Every request went to `origin` (or is a data: URL), none failed, no 5xx; no console line
        but, with `allow_4xx`, Chrome's note of a 4xx answer (the error a bad input asks for)."""
        elsewhere = [url for url in self.requests if not url.startswith((origin + "/", "data:"))]
        assert not elsewhere, f"requests to other origins: {elsewhere}"
        assert not self.failed, f"failed loads: {self.failed}"
        server_errors = {url: status for url, status in self.statuses.items() if status >= 500}
        assert not server_errors, f"5xx answers: {server_errors}"
        if not allow_4xx:
            assert not [url for url, status in self.statuses.items() if status >= 400], self.statuses
        noted_4xx = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")
        unexpected = [line for line in self.console
                      if not (allow_4xx and line["source"] == "network" and noted_4xx.search(line["message"]))]
        assert not unexpected, f"console: {unexpected}"


def _open_page(driver, url: str) -> None:
    driver.get_log("browser"), driver.get_log("performance")  # start from an empty log
    driver.get(url)
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))


@pytest.fixture(scope="module")
def page(browser, served):
    """The page, loaded once: no other origin, no failed request, no console line."""
    _open_page(browser, f"{served.url}/")
    logs = Logs(browser)
    logs.check(served.url)
    assert logs.requests[0] == f"{served.url}/" and len(logs.requests) >= 4  # page, css, js, /v1/models
    return browser


def _form(driver, model: str, op: str):
    return driver.find_element(By.CSS_SELECTOR, f'section[data-model="{model}"] form[data-op="{op}"]')


def _submit(driver, form, **values) -> None:
    """Set the fields (as typed text) and press the form's button; wait for its answer."""
    for name, value in values.items():
        field = form.find_element(By.NAME, name)
        if field.get_attribute("type") == "checkbox":
            if field.is_selected() != bool(value):
                field.click()
        else:
            driver.execute_script("arguments[0].value = arguments[1];", field, str(value))
    calls = int(form.get_attribute("data-calls"))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, WAIT_S).until(lambda d: int(form.get_attribute("data-calls")) == calls + 1)


def _texts(root, selector: str) -> list[str]:
    return [node.text for node in root.find_elements(By.CSS_SELECTOR, selector)]


def _contents(root, selector: str) -> list[str]:
    """Text as written (textContent), for text the page turns or hides."""
    return [node.get_attribute("textContent") for node in root.find_elements(By.CSS_SELECTOR, selector)]


def _post(served, path: str, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{served.url}{path}", json=body, headers=headers, timeout=WAIT_S)


# --- the page --------------------------------------------------------------------------------


def test_page_lists_every_model_with_its_provenance(page, served):
    listing = httpx.get(f"{served.url}/v1/models").json()["models"]
    sections = page.find_elements(By.CSS_SELECTOR, "section.model")
    assert [(s.get_attribute("data-model"), s.get_attribute("data-kind")) for s in sections] == [
        (model["name"], model["kind"]) for model in listing]
    for section, model in zip(sections, listing):
        keys = _contents(section, ".provenance dt")
        assert keys == list(model["provenance"]) and model["path"] in section.find_element(By.CLASS_NAME, "meta").text


def test_vectors_neighbours_and_map_equal_the_routes(page, served, vectors_path):
    form = _form(page, "words", "similar")
    _submit(page, form, word="cat", k=6)
    expected = _post(served, "/v1/embeddings/words/similar", {"words": ["cat"], "k": 6}).json()["results"][0]
    assert _texts(form, "ol.ranked .word") == [row["word"] for row in expected]
    assert _texts(form, "ol.ranked .score") == [f"{row['score']:.4f}" for row in expected]
    points = _post(served, "/v1/embeddings/words/map", {"word": "cat", "k": 6}).json()["points"]
    assert _texts(form, "svg.word-map text") == [p["word"] for p in points]
    circles = form.find_elements(By.CSS_SELECTOR, "svg.word-map circle")
    drawn = [(float(c.get_attribute("cx")), float(c.get_attribute("cy"))) for c in circles]
    xs, ys = [p["x"] for p in points], [p["y"] for p in points]
    for (cx, cy), p in zip(drawn, points):  # the page's scaling of the route's coordinates into 440 x 300
        assert cx == pytest.approx(30 + (p["x"] - min(xs)) / (max(xs) - min(xs)) * 320, abs=0.06)
        assert cy == pytest.approx(270 - (p["y"] - min(ys)) / (max(ys) - min(ys)) * 240, abs=0.06)
    analogy = _form(page, "words", "analogy")
    _submit(page, analogy, a="king", b="queen", c="man", k=4, method="3cosmul")
    expected = _post(served, "/v1/embeddings/words/analogy",
                     {"a": "king", "b": "queen", "c": "man", "k": 4, "method": "3cosmul"}).json()["results"]
    assert _texts(analogy, ".word") == [row["word"] for row in expected]
    assert _texts(analogy, ".score") == [f"{row['score']:.4f}" for row in expected]
    Logs(page).check(served.url)


def test_recommendations_with_titles_and_history_equal_the_route(page, served):
    form = _form(page, "rec", "recommend")
    _submit(page, form, user="105", k=5)
    expected = _post(served, "/v1/rec/rec/recommend",
                     {"users": ["105"], "k": 5, "exclude_seen": True, "history": 50}).json()["results"][0]
    assert _texts(form, "table.top-items td.item") == [row["item"] for row in expected["items"]]
    assert _texts(form, "table.top-items td.title") == [row["title"] or "" for row in expected["items"]]
    assert _texts(form, "table.top-items td.value") == [f"{row['score']:.4f}" for row in expected["items"]]
    assert "à la carte" in _texts(form, "table.top-items td.title")[0]
    assert _texts(form, "table.history td.item") == [row["item"] for row in expected["history"]]
    assert _texts(form, "table.history td.value") == [f"{row['rating']:.1f}" for row in expected["history"]]
    _submit(page, form, user="stranger", k=3)
    notice = form.find_element(By.CLASS_NAME, "notice").text
    assert notice == _post(served, "/v1/rec/rec/recommend", {"users": ["stranger"], "k": 3}).json()["results"][0][
        "notice"]
    Logs(page).check(served.url)


def _heat(form) -> tuple[list[list[float]], list[list[float]]]:
    """The heat map's weights as drawn: (each cell's weight, each cell's colour alpha)."""
    rows = [row.find_elements(By.TAG_NAME, "td") for row in form.find_elements(By.CSS_SELECTOR, "table.heatmap tbody tr")]
    weights = [[float(cell.get_attribute("data-weight")) for cell in row] for row in rows]
    alphas = [[float(re.search(r"rgba\(33, 102, 172, ([0-9.]+)\)", cell.get_attribute("style")).group(1))
               for cell in row] for row in rows]
    return weights, alphas


def test_translation_nbest_and_attention_equal_the_route(page, served):
    form = _form(page, "fr", "translate")
    text = "the cat eats a small fish"
    _submit(page, form, text=text, beam=4, nbest=3)
    expected = _post(served, "/v1/translate/fr", {"texts": [text], "beam": 4, "nbest": 3,
                                                  "attention": True}).json()["results"][0]
    assert _texts(form, "ol.hypotheses .text") == [h["text"] for h in expected]
    assert _texts(form, "ol.hypotheses .score") == [f"{h['score']:.4f}" for h in expected]
    for choice, hypothesis in enumerate(expected):
        form.find_elements(By.CSS_SELECTOR, "ol.hypotheses input[type=radio]")[choice].click()
        attention = hypothesis["attention"]
        assert _contents(form, "table.heatmap th.src") == attention["source"]
        assert _contents(form, "table.heatmap tbody th") == attention["target"]
        drawn, alphas = _heat(form)
        assert drawn == attention["weights"]
        for row, weights in zip(alphas, attention["weights"]):  # the browser keeps an alpha in 1/255 steps
            assert row == pytest.approx(weights, abs=0.5 / 255 + 1e-3)
    Logs(page).check(served.url)


def test_class_probabilities_equal_the_route(page, served):
    form = _form(page, "cls", "classify")
    _submit(page, form, text="a great and lovely movie")
    expected = _post(served, "/v1/classify/cls", {"texts": ["a great and lovely movie"]}).json()
    prediction = expected["predictions"][0]
    assert form.find_element(By.CSS_SELECTOR, ".bars strong.label").text == prediction["label"]
    assert _texts(form, ".bar .class") == expected["classes"]
    assert _texts(form, ".bar .probability") == [f"{prediction['probabilities'][c]:.4f}" for c in expected["classes"]]
    widths = [page.execute_script("return arguments[0].style.width;", fill)
              for fill in form.find_elements(By.CSS_SELECTOR, ".bar-fill")]
    assert widths == [f"{100 * prediction['probabilities'][c]:.1f}%".replace(".0%", "%") for c in expected["classes"]]
    Logs(page).check(served.url)


def test_fill_mask_top_k_per_mask_equals_the_route(page, served):
    form = _form(page, "bert", "fill")
    text = "the [MASK] sat on a [MASK] ."
    _submit(page, form, text=text, k=3)
    expected = _post(served, "/v1/fill-mask/bert", {"texts": [text], "k": 3}).json()["results"][0]
    assert form.find_element(By.CLASS_NAME, "filled").text == expected["filled"]
    masks = form.find_elements(By.CSS_SELECTOR, ".mask")
    assert len(masks) == len(expected["masks"]) == 2
    for mask, guesses in zip(masks, expected["masks"]):
        assert _contents(mask, ".piece") == [g["piece"] for g in guesses]
        assert _texts(mask, ".probability") == [f"{g['probability']:.4f}" for g in guesses]
    Logs(page).check(served.url)


def test_an_unknown_word_shows_the_routes_error(page, served):
    form = _form(page, "words", "similar")
    _submit(page, form, word="zzqxv", k=5)
    answer = _post(served, "/v1/embeddings/words/similar", {"words": ["zzqxv"], "k": 5})
    assert answer.status_code == 404
    assert form.find_element(By.CSS_SELECTOR, ".error[role=alert]").text == answer.json()["error"]
    Logs(page).check(served.url, allow_4xx=True)


BAD_INPUTS = [  # (model, operation, fields): inputs each form accepts that the server refuses
    ("words", "similar", {"word": "", "k": 5}), ("words", "similar", {"word": "cat", "k": ""}),
    ("words", "similar", {"word": "cat", "k": 100000}), ("words", "similar", {"word": "  <b>x</b>  ", "k": 3}),
    ("words", "analogy", {"a": "cat", "b": "", "c": "dog", "k": 2}),
    ("rec", "recommend", {"user": "", "k": ""}), ("rec", "recommend", {"user": "105", "k": 100000}),
    ("fr", "translate", {"text": "x" * 5000, "beam": 2, "nbest": 1}),
    ("fr", "translate", {"text": "cat", "beam": 2, "nbest": 5}), ("fr", "translate", {"text": "", "beam": "", "nbest": 1}),
    ("cls", "classify", {"text": ""}), ("cls", "classify", {"text": "   "}),
    ("bert", "fill", {"text": "no mask here", "k": 3}), ("bert", "fill", {"text": "[MASK]", "k": ""}),
]


ODD_INPUTS = [  # (model, operation, fields): odd text the server answers or refuses, never with a 5xx
    ("words", "similar", {"word": "😀\u0000</script>", "k": 3}), ("rec", "recommend", {"user": "😀 ' \"", "k": 2}),
    ("fr", "translate", {"text": "[MASK] \u202e😀 \t\n", "beam": 1, "nbest": 1}),
    ("cls", "classify", {"text": "!!! \u0000 ☃"}), ("bert", "fill", {"text": "[MASK] [MASK] 😀 [MASK]", "k": 1}),
]


def test_bad_inputs_show_the_error_with_no_5xx_and_no_console_error(page, served):
    for model, op, fields in BAD_INPUTS:
        form = _form(page, model, op)
        _submit(page, form, **fields)
        errors = _texts(form, ".error[role=alert]")
        assert len(errors) == 1 and errors[0] and not errors[0].startswith("HTTP"), (model, op, fields, errors)
    for model, op, fields in ODD_INPUTS:
        form = _form(page, model, op)
        _submit(page, form, **fields)
        errors = _texts(form, ".error[role=alert]")
        assert not errors or (errors[0] and not errors[0].startswith("HTTP")), (model, op, fields, errors)
        assert form.find_element(By.CLASS_NAME, "result").text.strip(), (model, op, fields)
    Logs(page).check(served.url, allow_4xx=True)


def test_docs_render_their_operations_offline(browser, served):
    operations = sum(1 for path in httpx.get(f"{served.url}/openapi.json").json()["paths"].values() for _ in path)
    _open_docs(browser, f"{served.url}/docs", ".opblock", operations)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) == operations
    Logs(browser).check(served.url)


def _open_docs(driver, url: str, selector: str, at_least: int) -> None:
    driver.get_log("browser"), driver.get_log("performance")
    driver.get(url)
    WebDriverWait(driver, WAIT_S).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, selector)) >= at_least)


# --- the API key and a path prefix -------------------------------------------------------------


class PrefixProxy:
    """A reverse proxy on 127.0.0.1 that serves `target` under `prefix` and strips it, as nginx's
    `location /nlp/ { proxy_pass http://127.0.0.1:PORT/; }` does."""

    def __init__(self, target: str, prefix: str) -> None:
        host, port = target.removeprefix("http://").split(":")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                if not self.path.startswith(prefix + "/"):
                    self.send_error(404)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = HTTPConnection(host, int(port), timeout=WAIT_S)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path[len(prefix):], body or None, headers)
                answer = upstream.getresponse()
                content = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                upstream.close()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_api_key_behind_a_path_prefix(browser, start_server, vectors_path, index_cache):
    """--root-path /nlp behind a proxy that strips it, with an API key: the page asks for the key,
    keeps it in memory only, then answers; /docs renders under the prefix."""
    running = start_server(["--model", f"words={vectors_path}", "--root-path", "/nlp"], env={"NLPREC_API_KEY": KEY},
                           cache=index_cache)
    proxy = PrefixProxy(running.url, "/nlp")
    try:
        _open_page(browser, f"{proxy.url}/nlp/")
        status = browser.find_element(By.ID, "status").text
        assert status == httpx.get(f"{running.url}/v1/models").json()["error"]
        Logs(browser).check(proxy.url, allow_4xx=True)  # the one 401 of /v1/models without the key
        browser.find_element(By.ID, "api-key").send_keys(KEY)
        browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
        WebDriverWait(browser, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "section.model"))
        form = _form(browser, "words", "similar")
        _submit(browser, form, word="dog", k=3)
        expected = _post(running, "/v1/embeddings/words/similar", {"words": ["dog"], "k": 3},
                         {"Authorization": f"Bearer {KEY}"}).json()["results"][0]
        assert _texts(form, "ol.ranked .word") == [row["word"] for row in expected]
        logs = Logs(browser)
        logs.check(proxy.url)
        assert all(url.startswith(f"{proxy.url}/nlp/") for url in logs.requests)
        stored = browser.execute_script("return [localStorage.length, sessionStorage.length, document.cookie];")
        assert stored == [0, 0, ""]
        _open_docs(browser, f"{proxy.url}/nlp/docs", ".opblock", 3)
        logs = Logs(browser)
        logs.check(proxy.url)
        assert f"{proxy.url}/nlp/openapi.json" in logs.requests
    finally:
        proxy.stop()
        running.stop()


def test_screenshot_for_the_readme(page, served):
    """Only with NLPREC_PAGE_SCREENSHOT=PATH: the page with every form answered, as a PNG."""
    target = os.environ.get("NLPREC_PAGE_SCREENSHOT")
    if not target:
        pytest.skip("set NLPREC_PAGE_SCREENSHOT=docs/serve-page.png to write the README's screenshot")
    page.get(f"{served.url}/")
    WebDriverWait(page, WAIT_S).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    _submit(page, _form(page, "words", "similar"), word="king", k=8)
    _submit(page, _form(page, "rec", "recommend"), user="105", k=5)
    _submit(page, _form(page, "fr", "translate"), text="the cat eats a small fish", beam=4, nbest=2)
    _submit(page, _form(page, "cls", "classify"), text="a great and lovely movie")
    _submit(page, _form(page, "bert", "fill"), text="the [MASK] sat on the mat .", k=3)
    height = page.execute_script("return document.documentElement.scrollHeight;")
    page.set_window_size(1100, min(height + 140, 4000))
    page.execute_script("window.scrollTo(0, 0);")
    time.sleep(0.3)
    from PIL import Image  # matplotlib's dependency (the plot extra)

    Path(target).parent.mkdir(parents=True, exist_ok=True)
    page.save_screenshot(target)
    Image.open(target).convert("RGB").quantize(colors=64).save(target, optimize=True)  # a few dozen kB

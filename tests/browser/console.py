"""The web console in Debian's Chromium, driven by Playwright (tests/tests/console.rs
starts the servers and passes what the tables hold).

    python3 console.py BASE_URL ARTEFACT_DIR EXPECTED.json

Each check prints `ok <name>`; the first failure raises with what it saw. Screenshots go
to ARTEFACT_DIR.
"""

import json
import os
import sys
import time
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import sync_playwright

BASE, ARTEFACTS, EXPECTED = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
os.makedirs(ARTEFACTS, exist_ok=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def shot(page, name):
    page.screenshot(path=os.path.join(ARTEFACTS, name + ".png"), full_page=False)


def rows(page, list_id="rows"):
    """The rendered rows of a list: (ts, text)."""
    return page.eval_on_selector_all(
        f"#{list_id} .row", "els => els.map(e => [Number(e.dataset.ts), e.textContent])"
    )


def status_count(page):
    """The row count the status line states, once the search shown has finished (a
    caller that changed the search in place waits for the URL to show it first)."""
    page.wait_for_function(
        "() => { const s = document.querySelector('#status'); return s && s.dataset.done === '1'; }",
        timeout=15000,
    )
    text = page.inner_text("#status")
    return 0 if "no rows" in text else int(text.split(" rows")[0].replace(",", ""))


def search_finds_expected_lines(page):
    page.goto(f"{BASE}/?range=all")
    page.fill("#q", "replica db-3")
    page.press("#q", "Enter")
    page.wait_for_function("() => new URLSearchParams(location.search).get('q') === 'replica db-3'")
    check(status_count(page) == EXPECTED["db3_lines"], f"db-3 rows: {page.inner_text('#status')}")
    got = rows(page)
    check(got and all("write to replica db-3 failed" in t for _, t in got), f"rows: {got[:3]}")
    check([ts for ts, _ in got] == sorted((ts for ts, _ in got), reverse=True), "newest first")
    facets = page.inner_text("#facets")
    check("h2" in facets and "h1" not in facets, f"host facet: {facets}")
    shot(page, "search")
    print("ok search finds the expected lines")
    with page.expect_download() as d:
        page.click("#export-csv")
    lines = open(d.value.path()).read().splitlines()
    check(lines[0].startswith("ts,hostname,source,severity"), f"CSV header {lines[0]}")
    check(len(lines) == 1 + EXPECTED["db3_lines"], f"CSV has {len(lines)} lines")
    with page.expect_download() as d:
        page.click("#export-json")
    exported = json.load(open(d.value.path()))
    check(len(exported) == EXPECTED["db3_lines"] and all("db-3" in r["message"] for r in exported), "JSON export")
    print("ok CSV and JSON export the rows")
    page.once("dialog", lambda d: d.accept("db-3 failures"))
    page.click("#save")
    page.wait_for_selector("#saved")
    page.goto(f"{BASE}/?q=heartbeat&range=all")
    page.select_option("#saved", label="db-3 failures")
    page.wait_for_function("() => new URLSearchParams(location.search).get('q') === 'replica db-3'")
    check(status_count(page) == EXPECTED["db3_lines"], "the saved query runs again")
    print("ok a saved query comes back")


def histogram_zoom_narrows_rows(page):
    page.goto(f"{BASE}/?q=replica&range=all")
    before = status_count(page)
    check(before == EXPECTED["replica_lines"], f"replica rows: {before}")
    page.wait_for_selector("#hist canvas")
    page.wait_for_function("() => /lines/.test(document.querySelector('#hits-total').textContent)")
    total = page.inner_text("#hits-total")
    check(total.startswith(f"{EXPECTED['replica_lines']:,} lines"), f"histogram total: {total}")
    over = page.query_selector("#hist .u-over").bounding_box()
    y = over["y"] + over["height"] / 2
    page.mouse.move(over["x"] + over["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(over["x"] + over["width"] * 0.5, y, steps=8)
    page.mouse.up()
    page.wait_for_function("() => new URLSearchParams(location.search).has('from')")
    q = parse_qs(urlparse(page.url).query)
    lo, hi = int(q["from"][0]) * 1000, int(q["to"][0]) * 1000
    after = status_count(page)
    check(0 < after < before, f"zoom left {after} of {before} rows")
    got = rows(page)
    check(all(lo <= ts < hi for ts, _ in got), f"rows outside [{lo}, {hi}): {got[:3]}")
    shot(page, "histogram-zoomed")
    print(f"ok histogram zoom narrows the rows ({before} -> {after})")
    return page.url, after, got[0][0]


def url_restores_view(browser, url, count, first_ts):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    check(status_count(page) == count, f"reloaded view has {page.inner_text('#status')}, not {count} rows")
    check(page.input_value("#q") == "replica", "search text restored")
    check(page.query_selector("#custom-range") is not None, "zoomed range restored")
    check(rows(page)[0][0] == first_ts, "same first row")
    page.goto(f"{BASE}/?view=patterns&range=all")
    page.wait_for_selector("#patterns")
    page.reload()
    page.wait_for_selector("#patterns tr.pattern")
    check(page.query_selector("#tab-patterns.on") is not None, "patterns tab restored")
    page.close()
    print("ok reloading a copied URL restores the view")


def context_shows_neighbours_in_order(page):
    page.goto(f"{BASE}/?q=%22replica+db-2%22&range=all")
    status_count(page)
    anchor_ts = rows(page)[5][0]
    page.click(f"#rows .row[data-ts='{anchor_ts}']")
    page.click("#rows .detail button.ctx")
    page.wait_for_selector("#context .ctx-anchor")
    got = page.eval_on_selector_all(
        "#context .ctx-row",
        "els => els.map(e => [Number(e.dataset.ts), e.textContent, e.classList.contains('ctx-anchor')])",
    )
    at = [i for i, r in enumerate(got) if r[2]]
    check(len(at) == 1, f"one anchor: {got}")
    i = at[0]
    check(got[i][0] == anchor_ts and "db-2" in got[i][1], f"anchor {got[i]}")
    check([r[0] for r in got] == sorted(r[0] for r in got), "oldest first")
    check(i >= 10 and len(got) - i - 1 >= 10, f"10 lines each side: {i} before, {len(got) - i - 1} after")
    check("db-1" in got[i - 1][1] and got[i - 1][0] == anchor_ts - 500000, f"line before: {got[i - 1]}")
    check("db-3" in got[i + 1][1] and got[i + 1][0] == anchor_ts + 500000, f"line after: {got[i + 1]}")
    check(all(" h2 " in f" {r[1]} " or "h2" in r[1] for r in got), "same host")
    shot(page, "context")
    page.click("#ctx-more")
    page.wait_for_function("() => document.querySelectorAll('#context .ctx-row').length >= 40")
    page.click("#context button:has-text('close')")
    print("ok context shows the neighbours in order")


def patterns_list_the_templates(page):
    page.goto(f"{BASE}/?view=patterns&range=all")
    page.wait_for_selector("#patterns tr.pattern")
    shown = page.eval_on_selector_all(
        "#patterns tr.pattern",
        "els => els.map(e => [e.dataset.id, Number(e.cells[0].textContent.replace(/,/g, '')), e.cells[2].textContent])",
    )
    want = EXPECTED["templates"]
    check({s[0]: s[1] for s in shown} == {k: v["n"] for k, v in want.items()}, f"patterns {shown} vs {want}")
    for tid, n, text in shown:
        check(text == want[tid]["text"], f"template {tid} text {text!r}")
    shot(page, "patterns")
    tid, n = shown[-1][0], shown[-1][1]
    page.click(f"#patterns tr.pattern[data-id='{tid}']")
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('q') === 'template:{tid}'")
    check(status_count(page) == min(n, 5000), f"template {tid}: {page.inner_text('#status')}")
    print(f"ok patterns list the {len(shown)} templates")


def anomalies_list_the_table(page):
    page.goto(f"{BASE}/?view=anomalies&range=all")
    page.wait_for_selector("#anomalies")
    shown = page.eval_on_selector_all(
        "#anomalies tr.anomaly", "els => els.map(e => [e.cells[1].textContent, e.dataset.kind])"
    )
    want = sorted(tuple(a) for a in EXPECTED["anomalies"])
    check(sorted(tuple(s) for s in shown) == want, f"anomalies {shown} vs {want}")
    shot(page, "anomalies")
    page.click("#anomalies tr.anomaly button")
    page.wait_for_selector("#context .ctx-row")
    print(f"ok anomalies list the {len(shown)} rows of the table")


def trends_show_the_stats(page):
    page.goto(f"{BASE}/?view=trends&range=all")
    page.wait_for_selector("#trends tr.host")
    shown = page.eval_on_selector_all(
        "#trends tr.host",
        "els => els.map(e => [e.dataset.host, Number(e.cells[1].textContent.replace(/,/g, '')), Number(e.cells[2].textContent.replace(/,/g, ''))])",
    )
    check(sorted(shown) == sorted(EXPECTED["trends"]), f"trends {shown} vs {EXPECTED['trends']}")
    check(len(page.query_selector_all(".uplot")) == 2, "two charts")
    shot(page, "trends")
    print("ok trends show the stats per host")


def context_has_a_link_of_its_own(page):
    ts = EXPECTED["context_ts"]
    page.goto(f"{BASE}/?view=context&host=h2&source=file&ts={ts}")
    page.wait_for_selector("#context .ctx-anchor")
    anchor = page.eval_on_selector("#context .ctx-anchor", "e => [Number(e.dataset.ts), e.textContent]")
    check(anchor[0] == ts and "db-2" in anchor[1], f"linked context anchor {anchor}")
    print("ok context has a link of its own")


def live_tail_shows_a_new_line(page):
    page.goto(f"{BASE}/?view=tail")
    page.wait_for_function("() => /live/.test(document.querySelector('#tail-state').textContent)")
    marker = f"console-tail-marker-{time.time_ns()}"
    with open(EXPECTED["tail_file"], "a") as f:
        f.write(f"{marker} first\n")
    t0 = time.monotonic()
    page.wait_for_selector(f"#tail-rows .row:has-text('{marker}')", timeout=2000)
    took = time.monotonic() - t0
    shot(page, "tail")
    page.click("#tail-pause")
    with open(EXPECTED["tail_file"], "a") as f:
        f.write(f"{marker} while paused\n")
    page.wait_for_timeout(1500)
    check(page.query_selector(f"#tail-rows .row:has-text('{marker} while paused')") is None, "pause holds lines")
    page.click("#tail-clear")
    check(len(rows(page, "tail-rows")) == 0, "clear empties the list")
    print(f"ok live tail showed a new line after {took:.2f} s")


def dark_theme_and_sql(page):
    page.goto(f"{BASE}/?view=sql&sql=SELECT+hostname%2C+count(*)+AS+n+FROM+logs+GROUP+BY+1+ORDER+BY+1")
    page.wait_for_selector("#sql-result tbody tr")
    cells = page.eval_on_selector_all("#sql-result tbody tr", "els => els.map(e => e.textContent)")
    check(any(c.startswith("h1") for c in cells), f"sql rows {cells}")
    page.click("#theme")
    page.wait_for_function("() => document.documentElement.dataset.theme === 'dark'", timeout=3000)
    shot(page, "sql-dark")
    page.click("#theme")
    page.wait_for_function("() => document.documentElement.dataset.theme === 'light'", timeout=3000)
    print("ok SQL tab and dark theme")


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    search_finds_expected_lines(page)
    url, count, first = histogram_zoom_narrows_rows(page)
    url_restores_view(browser, url, count, first)
    context_shows_neighbours_in_order(page)
    patterns_list_the_templates(page)
    anomalies_list_the_table(page)
    dark_theme_and_sql(page)
    trends_show_the_stats(page)
    context_has_a_link_of_its_own(page)
    live_tail_shows_a_new_line(page)
    check(not errors, f"errors on the page: {errors}")
    browser.close()

"""What a newcomer meets first: silence said in words, the display rate the page asks for,
Space after a click, a lone view using the window, and a page that puts nothing on window."""

from __future__ import annotations

import pytest
from pagekit import open_page, set_input, wait_connected, wait_text

pytestmark = pytest.mark.e2e

SILENT_FRAME = {"type": "fft_magnitudes", "frameCount": 1, "magnitudes": [0.0] * 129}
LOUD_FRAME = {"type": "fft_magnitudes", "frameCount": 2, "magnitudes": [0.0] * 16 + [0.1] * 113}

BRIGHT_TEXT_JS = """(id) => {
  const c = document.getElementById(id);
  const y = Math.round(c.height / 2);
  const row = c.getContext('2d').getImageData(0, y - 8, c.width, 16).data;
  let bright = 0;
  for (let i = 0; i < row.length; i += 4) {
    if (row[i] > 200 && row[i + 1] > 200 && row[i + 2] > 200) bright++;
  }
  return bright;
}"""

FEED_AND_DRAW = "async (m) => { const d = phase4.nextDraw(); phase4.feed(m); await d; }"


def test_a_silent_input_says_no_signal(page, engines):
    silent = engines("tone:1000:0")
    try:
        open_page(page, silent)
        wait_connected(page)
        page.wait_for_selector("#signalBadge", state="visible")
        assert page.text_content("#signalBadge") == "NO SIGNAL"
        assert page.evaluate("phase4.display.silent") is True
        for canvas in ("barsCanvas", "radialCanvas", "spectrogramCanvas"):
            assert page.evaluate(BRIGHT_TEXT_JS, canvas) > 50, canvas  # the words, mid-plot
    finally:
        silent.stop()


def test_no_signal_follows_the_frames_and_the_floor(page, tone_engine):
    open_page(page, tone_engine, "connect=0&smooth=0")
    page.evaluate(FEED_AND_DRAW, SILENT_FRAME)
    page.wait_for_selector("#signalBadge", state="visible")
    assert page.evaluate(BRIGHT_TEXT_JS, "barsCanvas") > 50
    page.evaluate(FEED_AND_DRAW, LOUD_FRAME)  # -20 dB in most bins
    page.wait_for_selector("#signalBadge", state="hidden")
    assert page.evaluate(BRIGHT_TEXT_JS, "barsCanvas") == 0
    set_input(page, "minDb", -10)  # now nothing is above the floor
    page.wait_for_selector("#signalBadge", state="visible")


@pytest.mark.parametrize(
    ("query", "fps"),
    [("", 60), ("fps=30", 30), ("fps=0", 0)],
    ids=["default", "fps=30", "every-frame"],
)
def test_the_page_asks_for_its_display_rate(page, tone_engine, query, fps):
    open_page(page, tone_engine, query)
    wait_connected(page)
    rate = f"&fps={fps}" if fps else ""
    expected = f"?format=f32{rate}&resolution=fine"
    assert page.evaluate("phase4.stats.url") == tone_engine.ws + expected
    start = page.evaluate("phase4.stats.messages")
    page.wait_for_timeout(2000)
    received = page.evaluate("phase4.stats.messages") - start
    if fps:  # the server sends at most fps per second (the tone makes ~172)
        assert 0.5 * fps * 2 <= received <= 1.2 * fps * 2 + 5, received
        assert page.text_content("#gapsDisplay") == "--"  # skipped on request: not gaps
        assert page.evaluate("phase4.stats.gaps") == 0
    else:
        assert received > 150 * 2 * 0.5, received
        assert page.text_content("#gapsDisplay").isdigit()


def test_a_server_address_with_its_own_options_is_left_alone(page, tone_engine):
    open_page(page, tone_engine, "connect=0")
    page.fill("#wsUrl", tone_engine.ws + "?fps=5")
    page.click("#connectBtn")
    page.wait_for_function("phase4.stats.state === 'connected'")
    assert page.evaluate("phase4.stats.url") == tone_engine.ws + "?fps=5&format=f32&resolution=fine"
    # JSON and the block spectrum, asked for in the address: the page reads them too
    page.fill("#wsUrl", tone_engine.ws + "?format=json&resolution=block")
    page.click("#connectBtn")
    url = tone_engine.ws + "?format=json&resolution=block&fps=60"
    page.wait_for_function(f"phase4.stats.url === '{url}' && phase4.stats.state === 'connected'")
    binary, messages = page.evaluate("[phase4.stats.binary, phase4.stats.messages]")
    page.wait_for_function(f"phase4.stats.messages > {messages + 5}")
    assert page.evaluate("phase4.stats.binary") == binary  # text, every one
    page.wait_for_function("phase4.drawnFrame && phase4.drawnFrame.fftSize === 256")
    assert page.evaluate("phase4.drawnFrame.magnitudes.length") == 129
    wait_text(page, "formatDisplay", "44100 Hz · FFT 256 · Δf 172 Hz")
    wait_text(page, "sourceDisplay", "FFT bins")  # the engine's view: no warning


def test_space_pauses_after_a_button_was_clicked(page, tone_engine):
    open_page(page, tone_engine)
    wait_connected(page)
    page.click("#resetBtn")
    set_input(page, "minDb", -50)
    page.keyboard.press(" ")
    page.wait_for_selector("#pausedBadge", state="visible")
    assert page.evaluate("phase4.state.minDb") == -50  # Reset view was not clicked again
    page.click("#helpBtn")
    page.wait_for_selector("#helpOverlay", state="visible")
    page.click("#helpClose")
    page.keyboard.press(" ")
    page.wait_for_selector("#pausedBadge", state="hidden")
    assert page.is_hidden("#helpOverlay")  # Space resumed; it did not reopen the help
    # a keyboard user's Space still presses the button they tabbed to
    page.focus("#pauseBtn")
    page.keyboard.press(" ")
    page.wait_for_selector("#pausedBadge", state="visible")


def test_a_view_alone_uses_the_height_of_the_window(page, tone_engine):
    open_page(page, tone_engine, "connect=0")
    assert page.evaluate("document.getElementById('spectrogramCanvas').offsetHeight") == 260
    page.keyboard.press("1")
    page.keyboard.press("2")  # spectrogram only
    page.wait_for_selector("#barsCanvas", state="hidden")
    tall = page.evaluate("document.getElementById('spectrogramCanvas').offsetHeight")
    assert tall >= 1000 - 150, tall
    page.keyboard.press("3")
    page.keyboard.press("1")  # bars only
    page.wait_for_selector("#spectrogramCanvas", state="hidden")
    assert page.evaluate("document.getElementById('barsCanvas').offsetHeight") >= 1000 - 150
    assert "views=bars" in page.url


def test_the_shipped_page_puts_nothing_on_window(browser, tone_engine):
    """Without the tests' hook, there is no global to reach in through."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(tone_engine.http)
        page.wait_for_function(
            "document.getElementById('connectionStatus').dataset.state === 'connected'"
        )
        assert page.evaluate("typeof window.phase4") == "undefined"
        names = ["phase4", "page", "state", "stats", "display", "loop", "intake"]  # not ids
        assert page.evaluate("(names) => names.filter((k) => k in window)", names) == []
    finally:
        context.close()


MODULES_JS = """async () => {
  const { streamUrl, asksForAnalysis, fromQuery, PRESET_KEYS } = await import('/state.js');
  const { FrameIntake, newStats } = await import('/frames.js');
  const { Display } = await import('/display.js');
  const intake = new FrameIntake(newStats());
  const frame = (n) => ({type: 'fft_magnitudes', frameCount: n, magnitudes: [0, 1]});
  for (const n of [1, 2, 5]) intake.accept(frame(n));
  intake.text('{oops');
  intake.accept({type: 'other'});
  const taken = intake.take();
  const display = new Display(fromQuery('?min=-60'));
  display.process({magnitudes: new Array(129).fill(0)});
  const silentThen = display.silent;
  display.process({magnitudes: new Array(129).fill(0.01)});  // -40 dB
  return {
    urls: [
      streamUrl('ws://h:1/ws', {fps: 60}), streamUrl('ws://h:1/ws?format=json', {fps: 30}),
      streamUrl('ws://h:1/ws?fps=5', {fps: 60, bands: '3'}),
      streamUrl('ws://h:1/ws', {fps: 0, bands: '24'}),
      streamUrl('ws://h:1/ws?bins=32', {fps: 60, bands: '3'}),
      streamUrl('ws://h:1/ws?format=f32&fps=1&scale=db', {fps: 60}),
      streamUrl('nonsense', {fps: 60}),
    ],
    asks: ['ws://h:1/ws?resolution=fine', 'ws://h:1/ws?bins=32', 'ws://h:1/ws?fps=2', 'nonsense']
      .map(asksForAnalysis),
    presetHasFps: PRESET_KEYS.includes('fps'),
    stats: intake.stats, taken: taken.frameCount, again: intake.take(),
    silent: [silentThen, display.silent],
  };
}"""


def test_the_pure_modules_work_on_their_own(page, tone_engine):
    """The page's modules, imported one by one (no page wiring involved)."""
    open_page(page, tone_engine, "connect=0")
    r = page.evaluate(MODULES_JS)
    assert r["urls"] == [
        "ws://h:1/ws?format=f32&fps=60&resolution=fine",
        "ws://h:1/ws?format=json&fps=30&resolution=fine",
        "ws://h:1/ws?fps=5&format=f32&bands=octave:3",
        "ws://h:1/ws?format=f32&bands=octave:24",
        "ws://h:1/ws?bins=32&format=f32&fps=60",
        "ws://h:1/ws?format=f32&fps=1&scale=db",
        "nonsense",
    ]
    assert r["asks"] == [True, False, False, False]
    assert r["presetHasFps"] is False
    stats = r["stats"]
    assert (stats["messages"], stats["gaps"], stats["skipped"]) == (3, 2, 2)
    assert (stats["bad"], stats["ignored"]) == (1, 1)
    assert (r["taken"], r["again"]) == (5, None)
    assert r["silent"] == [True, False]

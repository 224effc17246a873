// The WebSocket connection: connect / disconnect, and reconnect by itself with exponential
// backoff (250 ms doubling, capped at 5 s) whenever the socket closes without the user asking.
// Switching to another URL of the same server (other stream options) opens the new socket
// beside the old one, and drops the old one once the new one has spoken: no gap.

export const BACKOFF_START_MS = 250;
export const BACKOFF_CAP_MS = 5000;

export class Connection {
  /**
   * @param {{onText: (text: string) => void, onState: (info: object) => void}} handlers
   * onText receives every text message; onBinary (optional) every binary one (an ArrayBuffer).
   */
  constructor({ onText, onState, onBinary = () => {} }) {
    this.onText = onText;
    this.onBinary = onBinary;
    this.onState = onState;
    this.ws = null;
    this.pending = null; // a socket being switched to (switchTo), until its first message
    this.url = "";
    this.wanted = false; // the user wants a connection (reconnect while true)
    this.attempt = 0;
    this.timer = null;
    this.state = "disconnected";
    this.detail = "";
    this.nextRetryAt = 0;
    this.opens = 0; // successful opens (1 + number of reconnects)
  }

  setState(state, detail = "") {
    this.state = state;
    this.detail = detail;
    this.onState({ state, detail, url: this.url, attempt: this.attempt, nextRetryAt: this.nextRetryAt });
  }

  connect(url) {
    this.drop();
    this.url = url;
    this.wanted = true;
    this.attempt = 0;
    this.open();
  }

  disconnect() {
    this.wanted = false;
    this.drop();
    this.setState("disconnected", "closed by user");
  }

  /** Forget the current socket (without triggering a reconnect), any socket being switched
   * to and any pending retry. */
  drop() {
    clearTimeout(this.timer);
    this.timer = null;
    close(this.ws);
    close(this.pending);
    this.ws = this.pending = null;
  }

  /**
   * Move to another URL without a gap in the stream: the new socket opens beside the current
   * one, which keeps delivering until the new one's first message; then the new one takes over.
   * (An engine that lost its last client for a moment would restart its analysis, and the
   * first spectra after that come from a window still filling.) Not connected: connect(url).
   */
  switchTo(url) {
    if (this.state !== "connected" || !this.ws) {
      this.connect(url);
      return;
    }
    close(this.pending);
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.connect(url); // reports the malformed URL
      return;
    }
    ws.binaryType = "arraybuffer";
    this.pending = ws;
    ws.onmessage = (event) => {
      this.pending = null;
      close(this.ws);
      this.url = url;
      this.ws = ws;
      this.attempt = 0;
      this.opens += 1;
      this.attach(ws, true);
      this.setState("connected");
      ws.onmessage(event);
    };
    ws.onclose = () => {
      if (ws !== this.pending) return;
      this.pending = null;
      this.connect(url); // refused or closed before it spoke: the usual way, with its errors
    };
  }

  open() {
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      // A malformed URL will not get better by retrying.
      this.wanted = false;
      this.setState("error", `bad URL: ${e.message}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.setState(this.attempt ? "reconnecting" : "connecting", this.attempt ? `attempt ${this.attempt + 1}` : "");
    ws.onopen = () => {
      this.opens += 1;
      this.setState("connected");
    };
    this.attach(ws, false);
  }

  /** The handlers of the current socket; heard: it has delivered a message already. */
  attach(ws, heard) {
    ws.onmessage = (event) => {
      if (!heard) {
        heard = true;
        this.attempt = 0; // backoff restarts only once the server has actually sent something
      }
      if (typeof event.data === "string") this.onText(event.data);
      else this.onBinary(event.data); // an ArrayBuffer: a binary spectrum
    };
    ws.onerror = () => {
      /* onclose follows and decides */
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.ws = null;
      if (!this.wanted) {
        this.setState("disconnected", `closed (${event.code})`);
        return;
      }
      const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** this.attempt);
      this.attempt += 1;
      this.nextRetryAt = performance.now() + delay;
      this.setState("reconnecting", `closed (${event.code}); retry in ${(delay / 1000).toFixed(1)} s`);
      this.timer = setTimeout(() => {
        this.timer = null;
        if (this.wanted) this.open();
      }, delay);
    };
  }
}

function close(ws) {
  if (!ws) return;
  ws.onopen = ws.onclose = ws.onerror = ws.onmessage = null;
  try {
    ws.close(1000);
  } catch {
    /* already closed */
  }
}

// A minimal XMLHttpRequest for node, enough for autobahn-js's long-poll
// transport (lib/util.js http_post): POST with a body, a timeout, and
// onreadystatechange reaching readyState 4 with status and responseText.
import http from 'node:http';

export class XMLHttpRequest {
  constructor() {
    this.readyState = 0;
    this.status = 0;
    this.statusText = '';
    this.responseText = '';
    this.timeout = 0;
    this.withCredentials = false;
    this.onreadystatechange = null;
    this.ontimeout = null;
    this._headers = {};
  }

  open(method, url) {
    this._method = method;
    this._url = new URL(url);
    this.readyState = 1;
  }

  setRequestHeader(name, value) {
    this._headers[name] = value;
  }

  send(body) {
    const data = body === undefined || body === null ? '' : String(body);
    const req = http.request({
      method: this._method,
      hostname: this._url.hostname,
      port: this._url.port,
      path: this._url.pathname + this._url.search,
      headers: { ...this._headers, 'content-length': Buffer.byteLength(data) },
      agent: false,
    }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(this._timer);
        this.status = res.statusCode;
        this.statusText = res.statusMessage;
        this.responseText = Buffer.concat(chunks).toString('utf8');
        this._done();
      });
    });
    req.on('error', () => {
      clearTimeout(this._timer);
      if (this.readyState !== 4) {
        this.status = 0;
        this._done();
      }
    });
    if (this.timeout > 0) {
      this._timer = setTimeout(() => {
        this.readyState = 4;
        req.destroy();
        if (this.ontimeout) this.ontimeout();
      }, this.timeout);
    }
    req.end(data);
  }

  _done() {
    if (this.readyState === 4) return;
    this.readyState = 4;
    if (this.onreadystatechange) this.onreadystatechange();
  }
}

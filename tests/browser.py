"""Headless Chromium driven over the DevTools protocol, for the book's tests.

``Browser`` starts Debian's ``chromium`` with no network of its own (the
flags of a closed machine), opens ``file://`` pages, evaluates JavaScript in
them, collects console errors and uncaught exceptions, and takes
screenshots.  It talks to the browser with ``websocket-client``, which
Jupyter's server installs.
"""
import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import websocket

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
FLAGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--hide-scrollbars', '--window-size=1200,900', '--remote-debugging-port=0']


class Browser:
    """One Chromium with one tab, inside ``with``."""

    def __init__(self, profile):
        self.profile = Path(profile)

    def __enter__(self):
        self.process = subprocess.Popen([CHROMIUM, *FLAGS, f'--user-data-dir={self.profile}',
                                         'about:blank'], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        port_file = self.profile / 'DevToolsActivePort'
        deadline = time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError('chromium did not start its DevTools server')
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list', timeout=10) as answer:
            tab = next(t for t in json.load(answer) if t['type'] == 'page')
        self.socket = websocket.create_connection(tab['webSocketDebuggerUrl'], timeout=60,
                                                  suppress_origin=True)
        self.next_id, self.events = 0, []
        for domain in ('Page', 'Runtime', 'Log'):
            self.call(f'{domain}.enable')
        return self

    def __exit__(self, *exc_info):
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)

    def call(self, method, **params):
        """Send a DevTools command and return its result; events meanwhile are kept."""
        self.next_id += 1
        self.socket.send(json.dumps({'id': self.next_id, 'method': method, 'params': params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get('id') == self.next_id:
                if 'error' in message:
                    raise RuntimeError(f'{method}: {message["error"]}')
                return message['result']
            self.events.append(message)

    def evaluate(self, expression):
        """The JSON-able value of a JavaScript expression in the page."""
        result = self.call('Runtime.evaluate', expression=expression, returnByValue=True,
                           awaitPromise=True)
        if 'exceptionDetails' in result:
            raise RuntimeError(f'{expression}: {result["exceptionDetails"]}')
        return result['result'].get('value')

    def open(self, path, ready='true', timeout=60):
        """Load the file ``path`` and wait until the JavaScript ``ready`` is true;
        returns the console errors and exceptions of the page."""
        self.events = []
        self.call('Page.navigate', url=Path(path).resolve().as_uri())
        deadline = time.monotonic() + timeout
        while not self.evaluate(f'document.readyState === "complete" && ({ready})'):
            if time.monotonic() > deadline:
                raise TimeoutError(f'{path}: not ready after {timeout} s: {ready}')
            time.sleep(0.2)
        self.evaluate('0')  # collects the events sent so far
        return [self._describe(event) for event in self.events if self._is_error(event)]

    def screenshot(self, path):
        """The whole page as a PNG at ``path``."""
        data = self.call('Page.captureScreenshot', format='png', captureBeyondViewport=True)
        Path(path).write_bytes(base64.b64decode(data['data']))

    @staticmethod
    def _is_error(event):
        params = event.get('params', {})
        return (event.get('method') == 'Runtime.exceptionThrown'
                or (event.get('method') == 'Runtime.consoleAPICalled'
                    and params.get('type') in ('error', 'assert'))
                or (event.get('method') == 'Log.entryAdded'
                    and params.get('entry', {}).get('level') == 'error'))

    @staticmethod
    def _describe(event):
        params = event['params']
        if 'entry' in params:
            return f'{params["entry"].get("text")} ({params["entry"].get("url")})'
        if 'exceptionDetails' in params:
            return str(params['exceptionDetails'].get('exception', {}).get('description'))
        return ' '.join(str(arg.get('value', arg.get('description'))) for arg in params['args'])

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# test_console.py - srup-c2's operator console in a real headless Chromium (Debian's chromium,
# chromium-driver, python3-selenium), against a real broker with the plugin on 127.0.0.1, a real
# srup-c2 and real srup-device devices: log in; a human-moderated join appears with the phrase
# the device shows; a wrong pictograph does not approve it, the right one does (the device gets
# JOIN_SUCCESS); another is refused (JOIN_REFUSED); an ACTION from the page comes back
# ACTION_SUCCESS; a device's DATA carrying markup and script stays inert text; requests without
# a session or CSRF token are refused; the broker page shows counters and audit-log drops; the
# provisioning QR code renders. Screenshots of each page go to BUILD/tests/console/screenshots.
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import srupharness as h  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

TOOLS = os.path.join(h.BUILD, "tools")
SHOTS = os.path.join(h.BUILD, "tests", "console", "screenshots")
PASSWORD = "correct horse battery staple"


def lab_factory():
    d = h.Lab(start=False)
    p = os.path.join(d.dir, "console.policy")
    with open(p, "w") as f:
        # The C2 is a broker admin here, so that the console shows the $SYS counters.
        f.write(d.policy_text("admin %s\n" % d.server.hex))
    d.broker.policy = p
    d.broker.start()
    return d


class Daemon:
    def __init__(self, lab, name, role, peers, extra=""):
        self.role = role
        self.dir = os.path.join(lab.dir, "d-" + name)
        os.makedirs(os.path.join(self.dir, "peers"))
        for p in peers:
            shutil.copy(lab.ids[p].pub, os.path.join(self.dir, "peers",
                                                     lab.ids[p].hex + ".pub.pem"))
        crt, key = lab.certs[name]
        self.conf = os.path.join(self.dir, "conf")
        with open(self.conf, "w") as f:
            f.write("identity = %s\nrole = %s\nprivate_key = %s\npeer_keys = %s/peers\n"
                    "broker_host = localhost\nbroker_port = %d\ntls_ca = %s\ntls_cert = %s\n"
                    "tls_key = %s\nstate_file = %s/state\ncontrol_socket = %s/sock\n"
                    "timeout = 10\n%s" % (lab.ids[name].hex, role, lab.ids[name].priv, self.dir,
                                          lab.broker.tls_port, lab.pki.ca, crt, key, self.dir,
                                          self.dir, extra))
        self.exe = os.path.join(TOOLS, "srup-c2" if role == "c2" else "srup-device")
        self.log = open(os.path.join(self.dir, "log"), "w")

    def start(self):
        self.proc = subprocess.Popen([self.exe, "--config", self.conf, "run"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        for _ in range(100):
            if "connected=1" in self.ctl("status").stdout:
                return
            time.sleep(0.1)
        raise h.HarnessError("%s did not connect" % self.conf)

    def ctl(self, *args):
        pre = [self.exe, "--config", self.conf] if self.role == "c2" else \
            [self.exe, "ctl", "--config", self.conf]
        return subprocess.run(pre + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=60)

    def bg(self, *args):
        return subprocess.Popen([self.exe, "ctl", "--config", self.conf] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,1600"):
        o.add_argument(a)
    o.accept_insecure_certs = True  # the lab CA is not in the system's trust store
    from selenium.webdriver.chrome.service import Service
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def shot(drv, name):
    os.makedirs(SHOTS, exist_ok=True)
    drv.save_screenshot(os.path.join(SHOTS, name + ".png"))


def api(lab, port, method, path, body=None, cookie=None, csrf=None):
    ctx = ssl.create_default_context(cafile=lab.pki.ca)
    c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=30)
    hdr = {"Content-Type": "application/json"}
    if cookie:
        hdr["Cookie"] = "srup_session=" + cookie
    if csrf:
        hdr["X-CSRF-Token"] = csrf
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdr)
    r = c.getresponse()
    data = r.read()
    headers = dict(r.getheaders())
    c.close()
    return r.status, data, headers


def wait(drv, cond, timeout=20):
    try:
        return WebDriverWait(drv, timeout).until(lambda d: cond(d))
    except Exception:
        return None


def no_alert(drv):
    try:
        drv.switch_to.alert
        return False
    except NoAlertPresentException:
        return True


def test_console(lab, check):
    port = h.free_port()
    crt, key = lab.pki.cert("console", "/CN=localhost")
    c2 = Daemon(lab, "server", "c2", ["dev1", "dev2", "dev3"],
                "console_port = %d\nconsole_cert = %s\nconsole_key = %s\n"
                "console_operators = %s/operators\nconsole_audit_log = %s\n"
                "console_registration_url = https://registry.example:8443\n"
                % (port, crt, key, lab.dir, lab.audit_path))
    r = subprocess.run([c2.exe, "--config", c2.conf, "operator", "add", "alice"],
                       input=PASSWORD + "\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    check(r.returncode == 0 and "$y$" in open(os.path.join(lab.dir, "operators")).read(),
          "operator add: a yescrypt hash in the operators file")
    c2.start()
    devs = {}
    for n in ("dev1", "dev2"):
        devs[n] = Daemon(lab, n, "device", ["server"], "server = %s\nshow_file = %s/show\n"
                         % (lab.server.hex, os.path.join(lab.dir, "d-" + n)))
        devs[n].start()
    drv = browser()
    url = "https://localhost:%d/" % port
    try:
        # Headers of the page.
        st, _, hdrs = api(lab, port, "GET", "/")
        csp = hdrs.get("Content-Security-Policy", "")
        check(st == 200 and "script-src 'self'" in csp and "unsafe-inline" not in csp and
              hdrs.get("X-Content-Type-Options") == "nosniff", "CSP without inline script")

        drv.get(url)
        check(wait(drv, lambda d: d.find_element(By.ID, "login-section").is_displayed()),
              "the login form is shown")
        shot(drv, "01-login")
        drv.find_element(By.ID, "login-name").send_keys("alice")
        drv.find_element(By.ID, "login-password").send_keys("wrong password!")
        drv.find_element(By.CSS_SELECTOR, "#login button").click()
        check(wait(drv, lambda d: "wrong password" in d.find_element(By.ID, "login-error").text),
              "a wrong password is refused")
        drv.find_element(By.ID, "login-password").clear()
        drv.find_element(By.ID, "login-password").send_keys(PASSWORD)
        drv.find_element(By.CSS_SELECTOR, "#login button").click()
        check(wait(drv, lambda d: d.find_element(By.ID, "app").is_displayed()), "logged in")
        cookie = next((c for c in drv.get_cookies() if c["name"] == "srup_session"), {})
        check(cookie.get("httpOnly") and cookie.get("secure") and
              cookie.get("sameSite") == "Strict", "the session cookie is HttpOnly, Secure, "
              "SameSite=Strict: %r" % {k: cookie.get(k) for k in ("httpOnly", "secure",
                                                                  "sameSite")})
        sid = cookie.get("value")
        st, body, _ = api(lab, port, "GET", "/api/session", cookie=sid)
        csrf = json.loads(body).get("csrf") if st == 200 else None

        # Human-moderated join of dev1: the console shows the device's phrase.
        j1 = devs["dev1"].bg("join", "hm")
        card = wait(drv, lambda d: d.find_element(By.CSS_SELECTOR,
                                                  "article.join[data-device='%s']" %
                                                  lab.dev1.hex), 30)
        shown = {}
        for _ in range(100):
            try:
                for line in open(os.path.join(lab.dir, "d-dev1", "show")):
                    k, _, v = line.strip().partition(" ")
                    shown[k] = v
            except OSError:
                pass
            if "phrase" in shown:
                break
            time.sleep(0.1)
        phrase = card.find_element(By.CSS_SELECTOR, ".phrase").text if card else ""
        check(card is not None and phrase and phrase == shown.get("phrase"),
              "the pending join shows the phrase the device shows: %r / %r" % (
                  phrase, shown.get("phrase")))
        shot(drv, "02-pending-join")
        # Which choice is the device's pictograph? Compare with `srup pictograph` of its value.
        want = subprocess.run([os.path.join(TOOLS, "srup"), "pictograph", shown.get("value", ""),
                               "--style", "colour", "--scale", "10"], stdout=subprocess.PIPE,
                              text=True).stdout
        right = None
        for n in range(4):
            st, svg, _ = api(lab, port, "GET", "/api/pict/%s/%d/colour" % (lab.dev1.hex, n),
                             cookie=sid)
            if st == 200 and svg.decode() == want:
                right = n
        check(right is not None, "one of the choices is the device's pictograph")
        if right is not None:
            wrong = (right + 1) % 4
            card.find_element(By.CSS_SELECTOR, ".colour .choice[data-choice='%d']" % wrong).click()
            check(wait(drv, lambda d: "not the pictograph" in d.find_element(
                By.CSS_SELECTOR, "article.join[data-device='%s'] .error" % lab.dev1.hex).text),
                "a wrong pictograph does not approve the join")
            check(j1.poll() is None, "the device is still waiting")
            card = drv.find_element(By.CSS_SELECTOR, "article.join[data-device='%s']" %
                                    lab.dev1.hex)
            card.find_element(By.CSS_SELECTOR, ".colour .choice[data-choice='%d']" % right).click()
        out = j1.communicate(timeout=60)[0]
        check(j1.returncode == 0 and "OK JOIN_SUCCESS" in out,
              "approve: the device received JOIN_SUCCESS: %r" % out)
        # dev2: refused.
        j2 = devs["dev2"].bg("join", "hm")
        card = wait(drv, lambda d: d.find_element(By.CSS_SELECTOR,
                                                  "article.join[data-device='%s']" %
                                                  lab.dev2.hex), 30)
        if card is not None:
            card.find_element(By.CSS_SELECTOR, "button.refuse").click()
        out = j2.communicate(timeout=60)[0]
        check(j2.returncode == 1 and "JOIN_REFUSED" in out,
              "refuse: the device received JOIN_REFUSED: %r" % out)

        # An ACTION from the fleet page.
        drv.find_element(By.ID, "cmd-device").send_keys(lab.dev1.hex)
        Select(drv.find_element(By.ID, "cmd-flow")).select_by_value("action")
        drv.find_element(By.ID, "cmd-args").send_keys("1")
        drv.find_element(By.CSS_SELECTOR, "#command button").click()
        check(wait(drv, lambda d: "ACTION_SUCCESS" in d.find_element(By.ID, "outcomes").text, 30),
              "an ACTION from the page: ACTION_SUCCESS")

        # A device whose strings carry markup and script: inert text.
        c = lab.connect(lab.dev3)
        tok = lab.token()
        c.subscribe("SRUP/%s" % lab.dev3.hex)
        c.publish("SRUP/servers/%s/%s" % (lab.server.hex, lab.dev3.hex),
                  lab.msg(lab.dev3, "JOIN_REQ", token=tok))
        time.sleep(0.5)
        evil_id = b"<img src=x onerror=alert(1)>"
        evil = b"<script>alert(2)</script><b>bold</b>"
        c.publish("SRUP/%s" % lab.dev3.hex, lab.msg(lab.dev3, "DATA", data_id=evil_id, data=evil))
        row = wait(drv, lambda d: d.find_element(
            By.CSS_SELECTOR, "tr[data-device='%s'] .last-data" % lab.dev3.hex).text and
            d.find_element(By.CSS_SELECTOR, "tr[data-device='%s'] .last-data" % lab.dev3.hex), 30)
        text = row.text if row else ""
        check(text == "%s = %s" % (evil_id.decode(), evil.decode()),
              "the device's markup is shown as text: %r" % text)
        check(no_alert(drv) and not drv.find_elements(By.CSS_SELECTOR, "#fleet-table img, "
                                                      "#fleet-table b"),
              "no script ran and no element was made from it")
        shot(drv, "03-fleet")

        # No session, no CSRF token: refused.
        body = {"device": lab.dev1.hex, "flow": "action", "args": ["1"]}
        st, _, _ = api(lab, port, "POST", "/api/command", body)
        check(st == 401, "a command without a session: %d" % st)
        st, _, _ = api(lab, port, "POST", "/api/command", body, cookie=sid)
        check(st == 403, "a command without the CSRF token: %d" % st)
        st, _, _ = api(lab, port, "POST", "/api/command", body, cookie=sid, csrf="0" * 64)
        check(st == 403, "a command with a wrong CSRF token: %d" % st)
        st, _, _ = api(lab, port, "POST", "/api/approve", {"device": lab.dev1.hex, "choice": 0},
                       cookie=sid)
        check(st == 403, "approve without the CSRF token: %d" % st)
        st, _, _ = api(lab, port, "POST", "/api/command", body, cookie=sid, csrf=csrf)
        check(st == 200, "the same command with session and token: %d" % st)

        # Broker: counters (the C2 is an admin here) and the newest drops of the audit log.
        bad = bytearray(lab.msg(lab.dev3, "DATA", data_id=b"x", data=b"y"))
        bad[-1] ^= 1
        c.publish("SRUP/%s" % lab.dev3.hex, bytes(bad))
        drv.get(url + "#broker")
        check(wait(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#counters tr")) > 3, 30),
              "the broker's counters are shown")
        ok = wait(drv, lambda d: "bad_signature" in d.find_element(By.ID, "drops").text, 30)
        check(ok, "the newest drops include the bad signature just sent: %r" % (
            ok or api(lab, port, "GET", "/api/drops", cookie=sid)[1][:300]))
        time.sleep(6)  # a second chart sample
        drv.refresh()
        wait(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#legend span")) > 0, 30)
        drv.execute_script("document.getElementById('broker').scrollIntoView()")
        shot(drv, "04-broker")
        drv.execute_script("document.getElementById('provisioning').scrollIntoView()")
        check(wait(drv, lambda d: d.execute_script(
            "return document.getElementById('qr').naturalWidth") > 0), "the QR code renders")
        shot(drv, "05-provisioning")
        # A phone-sized screen.
        j3 = devs["dev2"].bg("join", "hm")
        drv.set_window_size(390, 1400)
        drv.get(url)
        wait(drv, lambda d: d.find_element(By.CSS_SELECTOR, "article.join"), 30)
        shot(drv, "06-phone-pending")
        wide = drv.execute_script("return document.documentElement.scrollWidth")
        check(wide <= 400, "readable on a phone: no sideways scrolling (%d px)" % wide)
        card = drv.find_element(By.CSS_SELECTOR, "article.join")
        card.find_element(By.CSS_SELECTOR, "button.refuse").send_keys("\n")
        j3.communicate(timeout=60)
        check(j3.returncode == 1, "refused with the keyboard")
        c.close()
    finally:
        drv.quit()
        for d in devs.values():
            d.stop()
        c2.stop()


if __name__ == "__main__":
    h.main([test_console], lab_factory=lab_factory)

// What a customer's React Native app does with the official 7.x SDK, driven by a test over stdin and stdout: one
// JSON command per line in ({"id", "op", "args"}), one answer per line out, prefixed so the SDK's own console
// output can never be mistaken for one.
const { storage } = require('./standins');
const FakeTimers = require('@sinonjs/fake-timers');
const readline = require('readline');

// The SDK's token watcher runs every ten minutes of its clock: the test moves that clock (and the server's) on
// instead of waiting. It starts where the test says the server's clock stands. Only the watcher's interval and the
// date are faked; sockets and timeouts run in real time.
const clock = FakeTimers.install({
  now: Number(process.env.GATEHOUSE_CLOCK_MS || Date.now()),
  toFake: ['setInterval', 'clearInterval', 'Date'],
});
const { Client } = require('@amityco/ts-sdk-react-native');

const states = [];
const renewalsAsked = [];
let nextAccessToken = null;
let nextSignature = null;
let client;

const sessionHandler = {
  sessionWillRenewAccessToken(renewal) {
    if (nextSignature) renewal.renewWithAuthSignature(nextSignature);
    else renewal.renew();
  },
};

const describe = (error) => ({ code: error && error.code, message: String(error && error.message) });
const state = () => (states.length > 0 ? states[states.length - 1] : 'notLoggedIn');
const attempt = async (call) => {
  try {
    const ok = await call();
    return { ok, state: state(), userId: client.userId ?? null };
  } catch (error) {
    return { ok: false, state: state(), error: describe(error) };
  }
};

const operations = {
  create(apiKey, apiUrl) {
    client = Client.createClient(apiKey, 'sg', { apiEndpoint: { http: apiUrl }, rteEnabled: false });
    Client.onSessionStateChange((next) => states.push(next));
    // The renewal of an app that logged in with an access token: it asks its backend, here the test, for a new one.
    Client.setAccessTokenHandler({
      async onTokenRenew(userId) {
        renewalsAsked.push(userId);
        if (!nextAccessToken) throw new Error('the backend has no new token');
        return nextAccessToken;
      },
    });
    return client.sessionState;
  },
  login: (userId, authToken) => attempt(() => Client.login(authToken ? { userId, authToken } : { userId }, sessionHandler, { disableRTE: true })),
  loginAsVisitor: (authSignature, authSignatureExpiresAt) => attempt(() => Client.loginAsVisitor(
    authSignature ? { authSignature, authSignatureExpiresAt, sessionHandler } : { sessionHandler })),
  loginAsBot: () => attempt(() => Client.loginAsBot({ sessionHandler })),
  loginWithAccessToken: (accessToken) => attempt(() => Client.loginWithAccessToken(accessToken)),
  secureLogout: () => attempt(() => Client.secureLogout()),
  async me() {
    try {
      const { data } = await client.http.get('/api/v3/users/me');
      return { ok: true, state: state(), userId: data.users[0].userId };
    } catch (error) {
      return { ok: false, state: state(), error: describe(error) };
    }
  },
  currentUserType() {
    try {
      return Client.getCurrentUserType();
    } catch (error) {
      return null;
    }
  },
  // The id the SDK made for this installation, as the app would read it to ask its backend for a visitor signature.
  deviceId: () => [...storage.values()].find((value) => value.startsWith('ascWebSdk#')) ?? null,
  accessToken: () => (client.token ? client.token.accessToken : null),
  state,
  states: () => states.slice(),
  renewalsAsked: () => renewalsAsked.slice(),
  setNextAccessToken(token) { nextAccessToken = token; return true; },
  setNextSignature(authSignature, authSignatureExpiresAt) { nextSignature = { authSignature, authSignatureExpiresAt }; return true; },
  // Jumps the clock without running the watcher, then lets exactly one of its ten-minute rounds run.
  advance(milliseconds) {
    clock.setSystemTime(Date.now() + milliseconds);
    clock.tick(10 * 60 * 1000);
    return Date.now();
  },
};

// One command at a time, in order, as an app's code would run them.
let queue = Promise.resolve();
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  queue = queue.then(async () => {
    const { id, op, args } = JSON.parse(line);
    let answer;
    try {
      answer = { id, result: await operations[op](...(args || [])) };
    } catch (error) {
      answer = { id, failure: describe(error) };
    }
    process.stdout.write(`@@gatehouse ${JSON.stringify(answer)}\n`);
  });
});
lines.on('close', () => queue.then(() => process.exit(0)));

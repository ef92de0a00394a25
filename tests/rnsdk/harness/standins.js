// In-memory stand-ins for the three React Native modules @amityco/ts-sdk-react-native needs, so the SDK itself runs
// unchanged in Node: storage (where it keeps its device id), network information, and the platform.
const Module = require('module');

const storage = new Map();
const standIns = {
  '@react-native-async-storage/async-storage': {
    __esModule: true,
    default: {
      getItem: async (key) => (storage.has(key) ? storage.get(key) : null),
      setItem: async (key, value) => { storage.set(key, String(value)); },
      removeItem: async (key) => { storage.delete(key); },
    },
  },
  // Always online; like the real module, its functions are both named exports and the default export's.
  '@react-native-community/netinfo': (() => {
    const netInfo = { addEventListener: () => () => {}, fetch: async () => ({ isConnected: true, isInternetReachable: true }) };
    return { __esModule: true, ...netInfo, default: netInfo };
  })(),
  'react-native': { Platform: { OS: 'ios', Version: '17.0', select: (choices) => choices.ios ?? choices.default } },
};

// React Native announces itself here; the SDK keeps its device id in AsyncStorage only when it sees it (elsewhere it
// would make a new id on every call).
Object.defineProperty(globalThis, 'navigator', { value: { product: 'ReactNative' }, configurable: true });

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function resolve(request, ...rest) {
  return Object.hasOwn(standIns, request) ? request : resolveFilename.call(this, request, ...rest);
};
const load = Module._load;
module.exports = { storage };
Module._load = function loadStandIn(request, ...rest) {
  return Object.hasOwn(standIns, request) ? standIns[request] : load.call(this, request, ...rest);
};

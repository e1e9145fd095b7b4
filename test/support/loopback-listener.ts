export { listenOnLoopback, stopListening } from '../../src/git/listen-on-loopback.js';

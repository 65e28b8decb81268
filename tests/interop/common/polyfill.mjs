// libp2p 2.x (via it-queue) calls Promise.withResolvers, which Node 20 lacks (Node >= 22 has it).
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

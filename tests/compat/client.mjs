// A client written the way the replaced system's scripts are: Node's fetch, a JSON body,
// reading `success` and `journey.steps`. Usage: node client.mjs BASE_URL [CALLS]
// Fires CALLS requests at once; prints one JSON line with what each answered; exits 1 if any
// call did not succeed or came back without its steps.
const [base, calls = "1"] = process.argv.slice(2);
const body = {
  journey: {
    name: "Node client journey",
    steps: [{ stepName: "Login" }, { stepName: "Browse Catalog" }, { stepName: "Logout", serviceName: "LoginService" }],
  },
  customerName: "Node Client",
};

async function one(index) {
  const response = await fetch(`${base}/api/journey-simulation/simulate-journey`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...body, journeyId: `node_${index}` }),
    signal: AbortSignal.timeout(60_000),
  });
  const result = await response.json();
  const steps = result.journey?.steps ?? [];
  return {
    httpStatus: response.status,
    success: result.success === true,
    journeyId: result.journey?.journeyId,
    reused: result.reused,
    steps: steps.map((s) => ({ stepName: s.stepName, serviceName: s.serviceName, status: s.status })),
  };
}

const results = await Promise.all(Array.from({ length: Number(calls) }, (_, i) => one(i)));
console.log(JSON.stringify(results));
process.exit(results.every((r) => r.success && r.steps.length > 0) ? 0 : 1);

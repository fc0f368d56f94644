// One-shot of docker-compose.yml (service mongo-init, mongosh on mongo1 as root): initiates the
// replica set rs0 once (a no-op when it already is), waits for a primary, then creates the
// application user `rampart` of database rampart if it is missing. Safe to run again.
const members = [
  { _id: 0, host: 'mongo1:27017', priority: 2 },
  { _id: 1, host: 'mongo2:27017', priority: 1 },
  { _id: 2, host: 'mongo3:27017', priority: 1 },
];
try {
  rs.status();
  print('replica set rs0 already initiated');
} catch (e) {
  if (e.codeName !== 'NotYetInitialized') throw e;
  rs.initiate({ _id: 'rs0', members });
  print('replica set rs0 initiated');
}
let primary = false;
for (let i = 0; i < 120 && !primary; i++) {
  primary = db.hello().isWritablePrimary;
  if (!primary) sleep(1000);
}
if (!primary) throw new Error('mongo1 is not primary after 120 s');
const app = db.getSiblingDB('rampart');
if (!app.getUser('rampart')) {
  app.createUser({
    user: 'rampart',
    pwd: process.env.MONGO_RAMPART_PASSWORD,
    roles: [{ role: 'readWrite', db: 'rampart' }, { role: 'dbAdmin', db: 'rampart' }],
  });
  print('user rampart created');
}

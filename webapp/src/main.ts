/**
 * Entry point of the browser phone (bundled to dist/moq-phone.js and loaded
 * by index.html): starts the UI controller and the test hook.
 */

import { App } from "./ui/app.js";
import { installTestHook } from "./ui/testhook.js";

const app = new App();
app.start();
installTestHook(app);

// The API docs page: Swagger UI over this server's OpenAPI document. No validator badge (it would call
// a third-party service) and no persisted authorization (a key never lands in localStorage).
window.ui = SwaggerUIBundle({
  url: "/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: false,
  validatorUrl: null,
  persistAuthorization: false,
  tryItOutEnabled: false,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 0,
});

// PROD environment: az deployment group create -g rg-jwkrot-prod -f infra/azure/main.bicep -p infra/azure/prod.bicepparam
using './main.bicep'

param environmentName = 'prod'
param keyVaultName = 'kv-maskinporten-prod'
// The published release image (public on ghcr.io). For a copy in your own Azure Container
// Registry, set its image here and its resource id below: the template grants the job identity
// AcrPull on it before it creates the job.
param containerImage = 'ghcr.io/jwk-rotator/jwk-rotator:0.1.0'
param registryResourceId = ''
// A failed key set, or a WARNING, CRITICAL or UNKNOWN finding after the run, fails the execution.
param exitOn = 'warning'
// 05:30 UTC every day, after TEST
param cronExpression = '30 5 * * *'
param replicaTimeoutSeconds = 1800
// No retry: a WARNING (exit 11) would run rotate again; the next scheduled execution retries.
param replicaRetryLimit = 0
param actionGroupId = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-monitoring/providers/Microsoft.Insights/actionGroups/ag-platform-prod'
// Set from the environment so that a webhook token never lands in the repository:
//   JWKROT_NEAR_EXPIRY_WEBHOOK=https://... az deployment group create ...
param nearExpiryWebhookUrl = readEnvironmentVariable('JWKROT_NEAR_EXPIRY_WEBHOOK', '')
param operatorObjectIds = []
param tags = {
  system: 'jwk-rotator'
  environment: 'prod'
}
// PROD promotes by hand: add the pending key in Samarbeidsportalen, one key at a time
// (`jwk-rotator jwks SET --kid KID --format maskinporten` prints it), then `jwk-rotator promote SET`.
param rotatorPolicyToml = '''
[defaults]
promotion = "manual"
rotate_after = "90d"

[[client]]
name = "testklient"
environments = ["PROD"]
consumer_secret = "{client}-{env}-jwk"
'''

// TEST environment: az deployment group create -g rg-jwkrot-test -f infra/azure/main.bicep -p infra/azure/test.bicepparam
using './main.bicep'

param environmentName = 'test'
param keyVaultName = 'kv-maskinporten-test'
// The published release image (public on ghcr.io). For a copy in your own Azure Container
// Registry, set its image here and its resource id below: the template grants the job identity
// AcrPull on it before it creates the job.
param containerImage = 'ghcr.io/jwk-rotator/jwk-rotator:0.1.0'
param registryResourceId = ''
// A failed key set, or a WARNING, CRITICAL or UNKNOWN finding after the run, fails the execution.
param exitOn = 'warning'
// 05:00 UTC every day
param cronExpression = '0 5 * * *'
param replicaTimeoutSeconds = 1800
// No retry: a WARNING (exit 11) would run rotate again; the next scheduled execution retries.
param replicaRetryLimit = 0
param actionGroupId = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-monitoring/providers/Microsoft.Insights/actionGroups/ag-platform-test'
// Set from the environment so that a webhook token never lands in the repository:
//   JWKROT_NEAR_EXPIRY_WEBHOOK=https://... az deployment group create ...
param nearExpiryWebhookUrl = readEnvironmentVariable('JWKROT_NEAR_EXPIRY_WEBHOOK', '')
param operatorObjectIds = []
param tags = {
  system: 'jwk-rotator'
  environment: 'test'
}
// Only the TEST key sets live in this vault. Promotion stays manual while keys are added by hand
// in Samarbeidsportalen, one at a time: add the pending key (`jwk-rotator jwks SET --kid KID
// --format maskinporten` prints it), then `jwk-rotator promote SET`.
param rotatorPolicyToml = '''
[defaults]
promotion = "manual"
rotate_after = "90d"

[[client]]
name = "testklient"
environments = ["TEST"]
consumer_secret = "{client}-{env}-jwk"
'''

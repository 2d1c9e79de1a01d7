// jwk-rotator on Azure Container Apps: one resource group per environment (TEST, PROD).
//
// Creates the Key Vault that holds the private keys, a user-assigned managed identity that may
// write secrets in that vault only (and pull the image from your registry, when it is an Azure
// Container Registry), a Log Analytics workspace, a Container Apps environment and a scheduled
// Container Apps Job whose one main container runs
//
//   jwk-rotator --config /config/jwk-rotator.toml rotate --exit-on warning
//
// A failed key set exits 1 and a WARNING, CRITICAL or UNKNOWN finding after the run exits 11,
// 12 or 13, so either fails the execution; an alert fires on failed executions. An Event Grid
// subscription forwards the vault's SecretNearExpiry events to a webhook as a second line of
// defence.
//
// Why one main container and no init container: in consumption-only and dedicated workload
// profile environments only main containers can use managed identity (Microsoft Learn,
// "Managed identities in Azure Container Apps", init containers section, and "Troubleshoot
// deployment errors": managed identity returns 401 or 403).
//
// Deploy:   az deployment group create -g RG -f infra/azure/main.bicep -p infra/azure/test.bicepparam
// Run now:  az containerapp job start -g RG -n <jobName output>
// See docs/deployment.md, "Path A: Azure Container Apps Job", for the whole procedure.

targetScope = 'resourceGroup'

@description('Environment this deployment serves; used in resource names.')
@allowed([
  'test'
  'prod'
])
param environmentName string

@description('Azure region for every resource.')
param location string = resourceGroup().location

@description('Short name used in resource names (lowercase letters and digits).')
@minLength(2)
@maxLength(12)
param baseName string = 'jwkrot'

@description('Key Vault name (globally unique, 3-24 characters). The vault holds only jwk-rotator secrets.')
@minLength(3)
@maxLength(24)
param keyVaultName string

@description('Container image to run, pinned by tag or digest. The default is the published release image.')
param containerImage string = 'ghcr.io/jwk-rotator/jwk-rotator:0.1.0'

@description('Resource id of the Azure Container Registry to pull containerImage from with the job identity (this template grants it AcrPull there, before the job is created). Empty for a public image such as the published one.')
param registryResourceId string = ''

@description('Lowest finding severity after the run that fails the execution: warning, critical or unknown (never: only a failed rotation fails it).')
@allowed([
  'never'
  'warning'
  'critical'
  'unknown'
])
param exitOn string = 'warning'

@description('Log filter of jwk-rotator (JWK_ROTATOR_LOG, an EnvFilter such as info or jwk_rotator=debug).')
param logFilter string = 'info'

@description('Schedule of the rotation job: a five-field cron expression, evaluated in UTC.')
param cronExpression string = '0 5 * * *'

@description('Maximum run time of one execution, in seconds.')
@minValue(60)
@maxValue(86400)
param replicaTimeoutSeconds int = 1800

// No retry by default. Container Apps retries a failed replica whatever its exit code (Microsoft
// Learn, "Jobs in Azure Container Apps", advanced job configuration: replicaRetryLimit is "the
// maximum number of times to retry a failed replica"; 0 fails it without retrying). rotate
// exits 11-13 for a WARNING, CRITICAL or UNKNOWN finding, which a second run does not change, so
// a retry would run rotate again after every warning. A briefly unreachable vault or Digdir is
// retried inside the run ([store.retry], [maskinporten.ENV.retry]); beyond that the execution
// fails, the alert fires, and the next scheduled execution is the retry.
@description('How often a failed replica is retried before the execution counts as failed. 0: rotate is not run again for a finding (exit 11-13); the next scheduled execution retries a failed rotation.')
@minValue(0)
@maxValue(10)
param replicaRetryLimit int = 0

@description('Prefix of the Key Vault secret names that jwk-rotator writes.')
param secretPrefix string = 'jwk-'

@description('The policy and client part of jwk-rotator.toml ([defaults] and [[client]] tables). The [store] and [publish] tables are generated here.')
param rotatorPolicyToml string

@description('Resource id of the Azure Monitor action group that is notified when an execution fails.')
param actionGroupId string

@description('Webhook that receives Microsoft.KeyVault.SecretNearExpiry events (Event Grid schema; it must answer the subscription validation handshake). Empty: no Event Grid subscription.')
@secure()
param nearExpiryWebhookUrl string = ''

@description('Object ids of Entra ID users or groups that operate the rotation by hand (promote, export-key); they get Key Vault Secrets Officer on the vault.')
param operatorObjectIds array = []

@description('Log retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 90

@description('Tags for every resource.')
param tags object = {}

// Key Vault Secrets Officer: read, write, list, update and delete secrets (no purge).
var secretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var jobName = 'caj-${baseName}-${environmentName}'

// [store] and [publish] are fixed by this deployment; the rest comes from the parameter file.
// The publish directory is an EmptyDir volume: the published sets are derived from the vault and
// can be printed at any time with `jwk-rotator jwks SET --format maskinporten`.
var rotatorConfig = format('''# Generated by infra/azure/main.bicep
[store]
kind = "azure-key-vault"
vault_url = "{0}"
secret_prefix = "{1}"
credential = "managed-identity"
client_id = "{2}"

[publish]
dir = "/work/jwks"

{3}
''', keyVault.properties.vaultUri, secretPrefix, identity.properties.clientId, rotatorPolicyToml)

var configArgs = [
  '--config'
  '/config/jwk-rotator.toml'
]

var containerResources = {
  cpu: json('0.25')
  memory: '0.5Gi'
}

var volumeMounts = [
  {
    volumeName: 'config'
    mountPath: '/config'
  }
  {
    volumeName: 'jwks'
    mountPath: '/work/jwks'
  }
]

// AZURE_CLIENT_ID names the user-assigned identity for any Azure SDK; jwk-rotator reads it too,
// and the generated config names the same client id. JWK_ROTATOR_LOG is the variable it reads
// first (RUST_LOG only when JWK_ROTATOR_LOG is unset).
var containerEnv = [
  {
    name: 'AZURE_CLIENT_ID'
    value: identity.properties.clientId
  }
  {
    name: 'JWK_ROTATOR_LOG'
    value: logFilter
  }
]

// Azure Container Registry: /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ContainerRegistry/registries/NAME
var registryParts = split(registryResourceId, '/')
var useRegistry = !empty(registryResourceId)

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${baseName}-${environmentName}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${baseName}-${environmentName}'
  location: location
  tags: tags
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    //checkov:skip=CKV_AZURE_189: The same reason as CKV_AZURE_109 below: the job (Consumption Container Apps), GitHub-hosted runners and operators reach the vault over its public endpoint, authenticated and authorised by Entra ID RBAC. A private endpoint needs a VNet-integrated environment, which this template does not create.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      //checkov:skip=CKV_AZURE_109: Consumption Container Apps and GitHub-hosted runners have no fixed egress addresses, so the vault firewall can not list them; access is by Entra ID RBAC only (no access policies, no keys). Put the environment in a VNet with a private endpoint to close the firewall.
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource keyVaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: keyVault
  properties: {
    workspaceId: logAnalytics.id
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

// The job's identity may manage secrets in this vault only.
resource identitySecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, identity.id, secretsOfficerRoleId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsOfficerRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'jwk-rotator job: rotate Maskinporten keys'
  }
}

resource operatorSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for operatorId in operatorObjectIds: {
    name: guid(keyVault.id, operatorId, secretsOfficerRoleId)
    scope: keyVault
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsOfficerRoleId)
      principalId: operatorId
      description: 'jwk-rotator operator: promote, retire, export-key'
    }
  }
]

// AcrPull for the job identity, in the registry's own resource group. Container Apps checks that
// it can pull the image when the job is created, so the job depends on this assignment.
module registryPull 'acr-pull.bicep' = if (useRegistry) {
  name: 'acr-pull-${baseName}-${environmentName}'
  scope: resourceGroup(useRegistry ? registryParts[2] : subscription().subscriptionId, useRegistry ? registryParts[4] : resourceGroup().name)
  params: {
    registryName: useRegistry ? last(registryParts) : 'none'
    principalId: identity.properties.principalId
  }
}

resource containerAppsEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: 'cae-${baseName}-${environmentName}'
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logAnalytics.properties.customerId
        sharedKey: logAnalytics.listKeys().primarySharedKey
      }
    }
  }
}

resource rotateJob 'Microsoft.App/jobs@2024-03-01' = {
  name: jobName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    environmentId: containerAppsEnvironment.id
    configuration: {
      triggerType: 'Schedule'
      replicaTimeout: replicaTimeoutSeconds
      replicaRetryLimit: replicaRetryLimit
      scheduleTriggerConfig: {
        cronExpression: cronExpression
        parallelism: 1
        replicaCompletionCount: 1
      }
      secrets: [
        {
          name: 'config'
          value: rotatorConfig
        }
      ]
      registries: useRegistry ? [
        {
          server: '${toLower(last(registryParts))}${environment().suffixes.acrLoginServer}'
          identity: identity.id
        }
      ] : []
    }
    template: {
      // One main container: init containers get no managed identity token in consumption-only
      // and dedicated workload profile environments. rotate --exit-on exits 1 for a failed key
      // set and 11/12/13 for a WARNING/CRITICAL/UNKNOWN finding after the run: the execution
      // fails and the alert fires.
      containers: [
        {
          name: 'rotate'
          image: containerImage
          command: [
            'jwk-rotator'
          ]
          args: concat(configArgs, [
            'rotate'
            '--exit-on'
            exitOn
          ])
          env: containerEnv
          resources: containerResources
          volumeMounts: volumeMounts
        }
      ]
      volumes: [
        {
          name: 'config'
          storageType: 'Secret'
          secrets: [
            {
              secretRef: 'config'
              path: 'jwk-rotator.toml'
            }
          ]
        }
        {
          name: 'jwks'
          storageType: 'EmptyDir'
        }
      ]
    }
  }
  dependsOn: [
    identitySecretsOfficer
    registryPull
  ]
}

resource failedExecutionAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${jobName}-failed'
  location: 'global'
  tags: tags
  properties: {
    description: 'A jwk-rotator execution failed: rotation failed, or status reported WARNING, CRITICAL or UNKNOWN. Read the execution logs (az containerapp job logs show) and docs/deployment.md (Path A).'
    severity: 1
    enabled: true
    scopes: [
      rotateJob.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'FailedExecutions'
          metricNamespace: 'Microsoft.App/jobs'
          metricName: 'Executions'
          dimensions: [
            {
              name: 'state'
              operator: 'Include'
              values: [
                'Failed'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}

// Second line of defence: Key Vault itself reports a secret 30 days before its `exp`
// (jwk-rotator sets `exp` = kid date + max_age on every key and on the consumer secret).
resource vaultEvents 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (!empty(nearExpiryWebhookUrl)) {
  name: 'evgt-${keyVaultName}'
  location: location
  tags: tags
  properties: {
    source: keyVault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

resource nearExpirySubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (!empty(nearExpiryWebhookUrl)) {
  parent: vaultEvents
  name: 'secret-near-expiry'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: nearExpiryWebhookUrl
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNearExpiry'
      ]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

@description('Vault URL for jwk-rotator.toml ([store] vault_url) on operators\' machines.')
output keyVaultUri string = keyVault.properties.vaultUri

@description('Client id of the job identity.')
output identityClientId string = identity.properties.clientId

@description('Name of the Container Apps Job: az containerapp job start -g RG -n NAME.')
output jobName string = rotateJob.name

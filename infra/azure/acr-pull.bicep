// AcrPull on one Azure Container Registry for a managed identity; deployed by main.bicep into the
// registry's resource group, so that the registry may live anywhere in the tenant.
//
// The order follows Microsoft Learn, "Azure Container Apps image pull with managed identity"
// (infrastructure as code): create the user-assigned identity, give it AcrPull, then create the
// app or job with the private image. The registry must allow ARM audience tokens
// (az acr config authentication-as-arm show -r REGISTRY).

targetScope = 'resourceGroup'

@description('Name of the Azure Container Registry (in this resource group).')
param registryName string

@description('Principal (object) id of the identity that pulls the image.')
param principalId string

// AcrPull, a built-in role: Microsoft.ContainerRegistry/registries/pull/read only
// (Microsoft Learn, "Azure built-in roles for Containers").
var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource pull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, acrPullRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'jwk-rotator job: pull its image'
  }
}

@description('The registry login server, for the job\'s registries setting.')
output loginServer string = registry.properties.loginServer

"""Every operation of the ``iot`` control-plane API and its HTTP binding. Generated.

From botocore's ``iot`` service model (2015-05-28), the machine-readable form of the AWS IoT API
reference (https://docs.aws.amazon.com/iot/latest/apireference/). One line per operation:
``Name METHOD /request/uri/{label} member=location:wire-name:type ...``, listing the members that
travel outside the JSON body (``uri`` labels, ``querystring`` parameters, ``header`` fields, and
the ``payload`` member that is the whole JSON body); every other member is a key of the body.
Regenerate with ``.venv/bin/python -m tests.iot_routes_gen`` after upgrading botocore.
"""

# ruff: noqa: E501

__all__ = ["IOT_API_VERSION", "IOT_ROUTE_TABLE"]

IOT_API_VERSION = "2015-05-28"
IOT_ROUTE_TABLE = """\
AcceptCertificateTransfer PATCH /accept-certificate-transfer/{certificateId} certificateId=uri:certificateId:string setAsActive=querystring:setAsActive:boolean
AddThingToBillingGroup PUT /billing-groups/addThingToBillingGroup
AddThingToThingGroup PUT /thing-groups/addThingToThingGroup
AssociateSbomWithPackageVersion PUT /packages/{packageName}/versions/{versionName}/sbom packageName=uri:packageName:string versionName=uri:versionName:string clientToken=querystring:clientToken:string
AssociateTargetsWithJob POST /jobs/{jobId}/targets jobId=uri:jobId:string namespaceId=querystring:namespaceId:string
AttachPolicy PUT /target-policies/{policyName} policyName=uri:policyName:string
AttachPrincipalPolicy PUT /principal-policies/{policyName} policyName=uri:policyName:string principal=header:x-amzn-iot-principal:string
AttachSecurityProfile PUT /security-profiles/{securityProfileName}/targets securityProfileName=uri:securityProfileName:string securityProfileTargetArn=querystring:securityProfileTargetArn:string
AttachThingPrincipal PUT /things/{thingName}/principals thingName=uri:thingName:string principal=header:x-amzn-principal:string thingPrincipalType=querystring:thingPrincipalType:string
CancelAuditMitigationActionsTask PUT /audit/mitigationactions/tasks/{taskId}/cancel taskId=uri:taskId:string
CancelAuditTask PUT /audit/tasks/{taskId}/cancel taskId=uri:taskId:string
CancelCertificateTransfer PATCH /cancel-certificate-transfer/{certificateId} certificateId=uri:certificateId:string
CancelDetectMitigationActionsTask PUT /detect/mitigationactions/tasks/{taskId}/cancel taskId=uri:taskId:string
CancelJob PUT /jobs/{jobId}/cancel jobId=uri:jobId:string force=querystring:force:boolean
CancelJobExecution PUT /things/{thingName}/jobs/{jobId}/cancel jobId=uri:jobId:string thingName=uri:thingName:string force=querystring:force:boolean
ClearDefaultAuthorizer DELETE /default-authorizer
ConfirmTopicRuleDestination GET /confirmdestination/{confirmationToken+} confirmationToken=uri:confirmationToken:string
CreateAuditSuppression POST /audit/suppressions/create
CreateAuthorizer POST /authorizer/{authorizerName} authorizerName=uri:authorizerName:string
CreateBillingGroup POST /billing-groups/{billingGroupName} billingGroupName=uri:billingGroupName:string
CreateCertificateFromCsr POST /certificates setAsActive=querystring:setAsActive:boolean
CreateCertificateProvider POST /certificate-providers/{certificateProviderName} certificateProviderName=uri:certificateProviderName:string
CreateCommand PUT /commands/{commandId} commandId=uri:commandId:string
CreateCustomMetric POST /custom-metric/{metricName} metricName=uri:metricName:string
CreateDimension POST /dimensions/{name} name=uri:name:string
CreateDomainConfiguration POST /domainConfigurations/{domainConfigurationName} domainConfigurationName=uri:domainConfigurationName:string
CreateDynamicThingGroup POST /dynamic-thing-groups/{thingGroupName} thingGroupName=uri:thingGroupName:string
CreateFleetMetric PUT /fleet-metric/{metricName} metricName=uri:metricName:string
CreateJob PUT /jobs/{jobId} jobId=uri:jobId:string
CreateJobTemplate PUT /job-templates/{jobTemplateId} jobTemplateId=uri:jobTemplateId:string
CreateKeysAndCertificate POST /keys-and-certificate setAsActive=querystring:setAsActive:boolean
CreateMitigationAction POST /mitigationactions/actions/{actionName} actionName=uri:actionName:string
CreateOTAUpdate POST /otaUpdates/{otaUpdateId} otaUpdateId=uri:otaUpdateId:string
CreatePackage PUT /packages/{packageName} packageName=uri:packageName:string clientToken=querystring:clientToken:string
CreatePackageVersion PUT /packages/{packageName}/versions/{versionName} packageName=uri:packageName:string versionName=uri:versionName:string clientToken=querystring:clientToken:string
CreatePolicy POST /policies/{policyName} policyName=uri:policyName:string
CreatePolicyVersion POST /policies/{policyName}/version policyName=uri:policyName:string setAsDefault=querystring:setAsDefault:boolean
CreateProvisioningClaim POST /provisioning-templates/{templateName}/provisioning-claim templateName=uri:templateName:string
CreateProvisioningTemplate POST /provisioning-templates
CreateProvisioningTemplateVersion POST /provisioning-templates/{templateName}/versions templateName=uri:templateName:string setAsDefault=querystring:setAsDefault:boolean
CreateRoleAlias POST /role-aliases/{roleAlias} roleAlias=uri:roleAlias:string
CreateScheduledAudit POST /audit/scheduledaudits/{scheduledAuditName} scheduledAuditName=uri:scheduledAuditName:string
CreateSecurityProfile POST /security-profiles/{securityProfileName} securityProfileName=uri:securityProfileName:string
CreateStream POST /streams/{streamId} streamId=uri:streamId:string
CreateThing POST /things/{thingName} thingName=uri:thingName:string
CreateThingGroup POST /thing-groups/{thingGroupName} thingGroupName=uri:thingGroupName:string
CreateThingType POST /thing-types/{thingTypeName} thingTypeName=uri:thingTypeName:string
CreateTopicRule POST /rules/{ruleName} ruleName=uri:ruleName:string tags=header:x-amz-tagging:string topicRulePayload=payload:topicRulePayload:structure
CreateTopicRuleDestination POST /destinations
DeleteAccountAuditConfiguration DELETE /audit/configuration deleteScheduledAudits=querystring:deleteScheduledAudits:boolean
DeleteAuditSuppression POST /audit/suppressions/delete
DeleteAuthorizer DELETE /authorizer/{authorizerName} authorizerName=uri:authorizerName:string
DeleteBillingGroup DELETE /billing-groups/{billingGroupName} billingGroupName=uri:billingGroupName:string expectedVersion=querystring:expectedVersion:long
DeleteCACertificate DELETE /cacertificate/{caCertificateId} certificateId=uri:caCertificateId:string
DeleteCertificate DELETE /certificates/{certificateId} certificateId=uri:certificateId:string forceDelete=querystring:forceDelete:boolean
DeleteCertificateProvider DELETE /certificate-providers/{certificateProviderName} certificateProviderName=uri:certificateProviderName:string
DeleteCommand DELETE /commands/{commandId} commandId=uri:commandId:string
DeleteCommandExecution DELETE /command-executions/{executionId} executionId=uri:executionId:string targetArn=querystring:targetArn:string
DeleteCustomMetric DELETE /custom-metric/{metricName} metricName=uri:metricName:string
DeleteDimension DELETE /dimensions/{name} name=uri:name:string
DeleteDomainConfiguration DELETE /domainConfigurations/{domainConfigurationName} domainConfigurationName=uri:domainConfigurationName:string
DeleteDynamicThingGroup DELETE /dynamic-thing-groups/{thingGroupName} thingGroupName=uri:thingGroupName:string expectedVersion=querystring:expectedVersion:long
DeleteFleetMetric DELETE /fleet-metric/{metricName} metricName=uri:metricName:string expectedVersion=querystring:expectedVersion:long
DeleteJob DELETE /jobs/{jobId} jobId=uri:jobId:string force=querystring:force:boolean namespaceId=querystring:namespaceId:string
DeleteJobExecution DELETE /things/{thingName}/jobs/{jobId}/executionNumber/{executionNumber} jobId=uri:jobId:string thingName=uri:thingName:string executionNumber=uri:executionNumber:long force=querystring:force:boolean namespaceId=querystring:namespaceId:string
DeleteJobTemplate DELETE /job-templates/{jobTemplateId} jobTemplateId=uri:jobTemplateId:string
DeleteMitigationAction DELETE /mitigationactions/actions/{actionName} actionName=uri:actionName:string
DeleteOTAUpdate DELETE /otaUpdates/{otaUpdateId} otaUpdateId=uri:otaUpdateId:string deleteStream=querystring:deleteStream:boolean forceDeleteAWSJob=querystring:forceDeleteAWSJob:boolean
DeletePackage DELETE /packages/{packageName} packageName=uri:packageName:string clientToken=querystring:clientToken:string
DeletePackageVersion DELETE /packages/{packageName}/versions/{versionName} packageName=uri:packageName:string versionName=uri:versionName:string clientToken=querystring:clientToken:string
DeletePolicy DELETE /policies/{policyName} policyName=uri:policyName:string
DeletePolicyVersion DELETE /policies/{policyName}/version/{policyVersionId} policyName=uri:policyName:string policyVersionId=uri:policyVersionId:string
DeleteProvisioningTemplate DELETE /provisioning-templates/{templateName} templateName=uri:templateName:string
DeleteProvisioningTemplateVersion DELETE /provisioning-templates/{templateName}/versions/{versionId} templateName=uri:templateName:string versionId=uri:versionId:integer
DeleteRegistrationCode DELETE /registrationcode
DeleteRoleAlias DELETE /role-aliases/{roleAlias} roleAlias=uri:roleAlias:string
DeleteScheduledAudit DELETE /audit/scheduledaudits/{scheduledAuditName} scheduledAuditName=uri:scheduledAuditName:string
DeleteSecurityProfile DELETE /security-profiles/{securityProfileName} securityProfileName=uri:securityProfileName:string expectedVersion=querystring:expectedVersion:long
DeleteStream DELETE /streams/{streamId} streamId=uri:streamId:string
DeleteThing DELETE /things/{thingName} thingName=uri:thingName:string expectedVersion=querystring:expectedVersion:long
DeleteThingGroup DELETE /thing-groups/{thingGroupName} thingGroupName=uri:thingGroupName:string expectedVersion=querystring:expectedVersion:long
DeleteThingType DELETE /thing-types/{thingTypeName} thingTypeName=uri:thingTypeName:string
DeleteTopicRule DELETE /rules/{ruleName} ruleName=uri:ruleName:string
DeleteTopicRuleDestination DELETE /destinations/{arn+} arn=uri:arn:string
DeleteV2LoggingLevel DELETE /v2LoggingLevel targetType=querystring:targetType:string targetName=querystring:targetName:string
DeprecateThingType POST /thing-types/{thingTypeName}/deprecate thingTypeName=uri:thingTypeName:string
DescribeAccountAuditConfiguration GET /audit/configuration
DescribeAuditFinding GET /audit/findings/{findingId} findingId=uri:findingId:string
DescribeAuditMitigationActionsTask GET /audit/mitigationactions/tasks/{taskId} taskId=uri:taskId:string
DescribeAuditSuppression POST /audit/suppressions/describe
DescribeAuditTask GET /audit/tasks/{taskId} taskId=uri:taskId:string
DescribeAuthorizer GET /authorizer/{authorizerName} authorizerName=uri:authorizerName:string
DescribeBillingGroup GET /billing-groups/{billingGroupName} billingGroupName=uri:billingGroupName:string
DescribeCACertificate GET /cacertificate/{caCertificateId} certificateId=uri:caCertificateId:string
DescribeCertificate GET /certificates/{certificateId} certificateId=uri:certificateId:string
DescribeCertificateProvider GET /certificate-providers/{certificateProviderName} certificateProviderName=uri:certificateProviderName:string
DescribeCustomMetric GET /custom-metric/{metricName} metricName=uri:metricName:string
DescribeDefaultAuthorizer GET /default-authorizer
DescribeDetectMitigationActionsTask GET /detect/mitigationactions/tasks/{taskId} taskId=uri:taskId:string
DescribeDimension GET /dimensions/{name} name=uri:name:string
DescribeDomainConfiguration GET /domainConfigurations/{domainConfigurationName} domainConfigurationName=uri:domainConfigurationName:string
DescribeEncryptionConfiguration GET /encryption-configuration
DescribeEndpoint GET /endpoint endpointType=querystring:endpointType:string
DescribeEventConfigurations GET /event-configurations
DescribeFleetMetric GET /fleet-metric/{metricName} metricName=uri:metricName:string
DescribeIndex GET /indices/{indexName} indexName=uri:indexName:string
DescribeJob GET /jobs/{jobId} jobId=uri:jobId:string beforeSubstitution=querystring:beforeSubstitution:boolean
DescribeJobExecution GET /things/{thingName}/jobs/{jobId} jobId=uri:jobId:string thingName=uri:thingName:string executionNumber=querystring:executionNumber:long
DescribeJobTemplate GET /job-templates/{jobTemplateId} jobTemplateId=uri:jobTemplateId:string
DescribeManagedJobTemplate GET /managed-job-templates/{templateName} templateName=uri:templateName:string templateVersion=querystring:templateVersion:string
DescribeMitigationAction GET /mitigationactions/actions/{actionName} actionName=uri:actionName:string
DescribeProvisioningTemplate GET /provisioning-templates/{templateName} templateName=uri:templateName:string
DescribeProvisioningTemplateVersion GET /provisioning-templates/{templateName}/versions/{versionId} templateName=uri:templateName:string versionId=uri:versionId:integer
DescribeRoleAlias GET /role-aliases/{roleAlias} roleAlias=uri:roleAlias:string
DescribeScheduledAudit GET /audit/scheduledaudits/{scheduledAuditName} scheduledAuditName=uri:scheduledAuditName:string
DescribeSecurityProfile GET /security-profiles/{securityProfileName} securityProfileName=uri:securityProfileName:string
DescribeStream GET /streams/{streamId} streamId=uri:streamId:string
DescribeThing GET /things/{thingName} thingName=uri:thingName:string
DescribeThingGroup GET /thing-groups/{thingGroupName} thingGroupName=uri:thingGroupName:string
DescribeThingRegistrationTask GET /thing-registration-tasks/{taskId} taskId=uri:taskId:string
DescribeThingType GET /thing-types/{thingTypeName} thingTypeName=uri:thingTypeName:string
DetachPolicy POST /target-policies/{policyName} policyName=uri:policyName:string
DetachPrincipalPolicy DELETE /principal-policies/{policyName} policyName=uri:policyName:string principal=header:x-amzn-iot-principal:string
DetachSecurityProfile DELETE /security-profiles/{securityProfileName}/targets securityProfileName=uri:securityProfileName:string securityProfileTargetArn=querystring:securityProfileTargetArn:string
DetachThingPrincipal DELETE /things/{thingName}/principals thingName=uri:thingName:string principal=header:x-amzn-principal:string
DisableTopicRule POST /rules/{ruleName}/disable ruleName=uri:ruleName:string
DisassociateSbomFromPackageVersion DELETE /packages/{packageName}/versions/{versionName}/sbom packageName=uri:packageName:string versionName=uri:versionName:string clientToken=querystring:clientToken:string
EnableTopicRule POST /rules/{ruleName}/enable ruleName=uri:ruleName:string
GetBehaviorModelTrainingSummaries GET /behavior-model-training/summaries securityProfileName=querystring:securityProfileName:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
GetBucketsAggregation POST /indices/buckets
GetCardinality POST /indices/cardinality
GetCommand GET /commands/{commandId} commandId=uri:commandId:string
GetCommandExecution GET /command-executions/{executionId} executionId=uri:executionId:string targetArn=querystring:targetArn:string includeResult=querystring:includeResult:boolean
GetEffectivePolicies POST /effective-policies thingName=querystring:thingName:string
GetIndexingConfiguration GET /indexing/config
GetJobDocument GET /jobs/{jobId}/job-document jobId=uri:jobId:string beforeSubstitution=querystring:beforeSubstitution:boolean
GetLoggingOptions GET /loggingOptions
GetOTAUpdate GET /otaUpdates/{otaUpdateId} otaUpdateId=uri:otaUpdateId:string
GetPackage GET /packages/{packageName} packageName=uri:packageName:string
GetPackageConfiguration GET /package-configuration
GetPackageVersion GET /packages/{packageName}/versions/{versionName} packageName=uri:packageName:string versionName=uri:versionName:string
GetPercentiles POST /indices/percentiles
GetPolicy GET /policies/{policyName} policyName=uri:policyName:string
GetPolicyVersion GET /policies/{policyName}/version/{policyVersionId} policyName=uri:policyName:string policyVersionId=uri:policyVersionId:string
GetRegistrationCode GET /registrationcode
GetStatistics POST /indices/statistics
GetThingConnectivityData POST /things/{thingName}/connectivity-data thingName=uri:thingName:string
GetTopicRule GET /rules/{ruleName} ruleName=uri:ruleName:string
GetTopicRuleDestination GET /destinations/{arn+} arn=uri:arn:string
GetV2LoggingOptions GET /v2LoggingOptions verbose=querystring:verbose:boolean
ListActiveViolations GET /active-violations thingName=querystring:thingName:string securityProfileName=querystring:securityProfileName:string behaviorCriteriaType=querystring:behaviorCriteriaType:string listSuppressedAlerts=querystring:listSuppressedAlerts:boolean verificationState=querystring:verificationState:string nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListAttachedPolicies POST /attached-policies/{target} target=uri:target:string recursive=querystring:recursive:boolean marker=querystring:marker:string pageSize=querystring:pageSize:integer
ListAuditFindings POST /audit/findings
ListAuditMitigationActionsExecutions GET /audit/mitigationactions/executions taskId=querystring:taskId:string actionStatus=querystring:actionStatus:string findingId=querystring:findingId:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListAuditMitigationActionsTasks GET /audit/mitigationactions/tasks auditTaskId=querystring:auditTaskId:string findingId=querystring:findingId:string taskStatus=querystring:taskStatus:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string startTime=querystring:startTime:timestamp endTime=querystring:endTime:timestamp
ListAuditSuppressions POST /audit/suppressions/list
ListAuditTasks GET /audit/tasks startTime=querystring:startTime:timestamp endTime=querystring:endTime:timestamp taskType=querystring:taskType:string taskStatus=querystring:taskStatus:string nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListAuthorizers GET /authorizers/ pageSize=querystring:pageSize:integer marker=querystring:marker:string ascendingOrder=querystring:isAscendingOrder:boolean status=querystring:status:string
ListBillingGroups GET /billing-groups nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer namePrefixFilter=querystring:namePrefixFilter:string
ListCACertificates GET /cacertificates pageSize=querystring:pageSize:integer marker=querystring:marker:string ascendingOrder=querystring:isAscendingOrder:boolean templateName=querystring:templateName:string
ListCertificateProviders GET /certificate-providers/ nextToken=querystring:nextToken:string ascendingOrder=querystring:isAscendingOrder:boolean
ListCertificates GET /certificates pageSize=querystring:pageSize:integer marker=querystring:marker:string ascendingOrder=querystring:isAscendingOrder:boolean
ListCertificatesByCA GET /certificates-by-ca/{caCertificateId} caCertificateId=uri:caCertificateId:string pageSize=querystring:pageSize:integer marker=querystring:marker:string ascendingOrder=querystring:isAscendingOrder:boolean
ListCommandExecutions POST /command-executions maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListCommands GET /commands maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string namespace=querystring:namespace:string commandParameterName=querystring:commandParameterName:string sortOrder=querystring:sortOrder:string
ListCustomMetrics GET /custom-metrics nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListDetectMitigationActionsExecutions GET /detect/mitigationactions/executions taskId=querystring:taskId:string violationId=querystring:violationId:string thingName=querystring:thingName:string startTime=querystring:startTime:timestamp endTime=querystring:endTime:timestamp maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListDetectMitigationActionsTasks GET /detect/mitigationactions/tasks maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string startTime=querystring:startTime:timestamp endTime=querystring:endTime:timestamp
ListDimensions GET /dimensions nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListDomainConfigurations GET /domainConfigurations marker=querystring:marker:string pageSize=querystring:pageSize:integer serviceType=querystring:serviceType:string
ListFleetMetrics GET /fleet-metrics nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListIndices GET /indices nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListJobExecutionsForJob GET /jobs/{jobId}/things jobId=uri:jobId:string status=querystring:status:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListJobExecutionsForThing GET /things/{thingName}/jobs thingName=uri:thingName:string status=querystring:status:string namespaceId=querystring:namespaceId:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string jobId=querystring:jobId:string
ListJobTemplates GET /job-templates maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListJobs GET /jobs status=querystring:status:string targetSelection=querystring:targetSelection:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string thingGroupName=querystring:thingGroupName:string thingGroupId=querystring:thingGroupId:string namespaceId=querystring:namespaceId:string
ListManagedJobTemplates GET /managed-job-templates templateName=querystring:templateName:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListMetricValues GET /metric-values thingName=querystring:thingName:string metricName=querystring:metricName:string dimensionName=querystring:dimensionName:string dimensionValueOperator=querystring:dimensionValueOperator:string startTime=querystring:startTime:timestamp endTime=querystring:endTime:timestamp maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListMitigationActions GET /mitigationactions/actions actionType=querystring:actionType:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListOTAUpdates GET /otaUpdates maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string otaUpdateStatus=querystring:otaUpdateStatus:string
ListOutgoingCertificates GET /certificates-out-going pageSize=querystring:pageSize:integer marker=querystring:marker:string ascendingOrder=querystring:isAscendingOrder:boolean
ListPackageVersions GET /packages/{packageName}/versions packageName=uri:packageName:string status=querystring:status:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListPackages GET /packages maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListPolicies GET /policies marker=querystring:marker:string pageSize=querystring:pageSize:integer ascendingOrder=querystring:isAscendingOrder:boolean
ListPolicyPrincipals GET /policy-principals policyName=header:x-amzn-iot-policy:string marker=querystring:marker:string pageSize=querystring:pageSize:integer ascendingOrder=querystring:isAscendingOrder:boolean
ListPolicyVersions GET /policies/{policyName}/version policyName=uri:policyName:string
ListPrincipalPolicies GET /principal-policies principal=header:x-amzn-iot-principal:string marker=querystring:marker:string pageSize=querystring:pageSize:integer ascendingOrder=querystring:isAscendingOrder:boolean
ListPrincipalThings GET /principals/things nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer principal=header:x-amzn-principal:string
ListPrincipalThingsV2 GET /principals/things-v2 nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer principal=header:x-amzn-principal:string thingPrincipalType=querystring:thingPrincipalType:string
ListProvisioningTemplateVersions GET /provisioning-templates/{templateName}/versions templateName=uri:templateName:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListProvisioningTemplates GET /provisioning-templates maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListRelatedResourcesForAuditFinding GET /audit/relatedResources findingId=querystring:findingId:string nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListRoleAliases GET /role-aliases pageSize=querystring:pageSize:integer marker=querystring:marker:string ascendingOrder=querystring:isAscendingOrder:boolean
ListSbomValidationResults GET /packages/{packageName}/versions/{versionName}/sbom-validation-results packageName=uri:packageName:string versionName=uri:versionName:string validationResult=querystring:validationResult:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListScheduledAudits GET /audit/scheduledaudits nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListSecurityProfiles GET /security-profiles nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer dimensionName=querystring:dimensionName:string metricName=querystring:metricName:string
ListSecurityProfilesForTarget GET /security-profiles-for-target nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer recursive=querystring:recursive:boolean securityProfileTargetArn=querystring:securityProfileTargetArn:string
ListStreams GET /streams maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string ascendingOrder=querystring:isAscendingOrder:boolean
ListTagsForResource GET /tags resourceArn=querystring:resourceArn:string nextToken=querystring:nextToken:string
ListTargetsForPolicy POST /policy-targets/{policyName} policyName=uri:policyName:string marker=querystring:marker:string pageSize=querystring:pageSize:integer
ListTargetsForSecurityProfile GET /security-profiles/{securityProfileName}/targets securityProfileName=uri:securityProfileName:string nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListThingGroups GET /thing-groups nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer parentGroup=querystring:parentGroup:string namePrefixFilter=querystring:namePrefixFilter:string recursive=querystring:recursive:boolean
ListThingGroupsForThing GET /things/{thingName}/thing-groups thingName=uri:thingName:string nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListThingPrincipals GET /things/{thingName}/principals nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer thingName=uri:thingName:string
ListThingPrincipalsV2 GET /things/{thingName}/principals-v2 nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer thingName=uri:thingName:string thingPrincipalType=querystring:thingPrincipalType:string
ListThingRegistrationTaskReports GET /thing-registration-tasks/{taskId}/reports taskId=uri:taskId:string reportType=querystring:reportType:string nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListThingRegistrationTasks GET /thing-registration-tasks nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer status=querystring:status:string
ListThingTypes GET /thing-types nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer thingTypeName=querystring:thingTypeName:string
ListThings GET /things nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer attributeName=querystring:attributeName:string attributeValue=querystring:attributeValue:string thingTypeName=querystring:thingTypeName:string usePrefixAttributeValue=querystring:usePrefixAttributeValue:boolean
ListThingsInBillingGroup GET /billing-groups/{billingGroupName}/things billingGroupName=uri:billingGroupName:string nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListThingsInThingGroup GET /thing-groups/{thingGroupName}/things thingGroupName=uri:thingGroupName:string recursive=querystring:recursive:boolean nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListTopicRuleDestinations GET /destinations maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string
ListTopicRules GET /rules topic=querystring:topic:string maxResults=querystring:maxResults:integer nextToken=querystring:nextToken:string ruleDisabled=querystring:ruleDisabled:boolean
ListV2LoggingLevels GET /v2LoggingLevel targetType=querystring:targetType:string nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
ListViolationEvents GET /violation-events startTime=querystring:startTime:timestamp endTime=querystring:endTime:timestamp thingName=querystring:thingName:string securityProfileName=querystring:securityProfileName:string behaviorCriteriaType=querystring:behaviorCriteriaType:string listSuppressedAlerts=querystring:listSuppressedAlerts:boolean verificationState=querystring:verificationState:string nextToken=querystring:nextToken:string maxResults=querystring:maxResults:integer
PutVerificationStateOnViolation POST /violations/verification-state/{violationId} violationId=uri:violationId:string
RegisterCACertificate POST /cacertificate setAsActive=querystring:setAsActive:boolean allowAutoRegistration=querystring:allowAutoRegistration:boolean
RegisterCertificate POST /certificate/register setAsActive=querystring:setAsActive:boolean
RegisterCertificateWithoutCA POST /certificate/register-no-ca
RegisterThing POST /things
RejectCertificateTransfer PATCH /reject-certificate-transfer/{certificateId} certificateId=uri:certificateId:string
RemoveThingFromBillingGroup PUT /billing-groups/removeThingFromBillingGroup
RemoveThingFromThingGroup PUT /thing-groups/removeThingFromThingGroup
ReplaceTopicRule PATCH /rules/{ruleName} ruleName=uri:ruleName:string topicRulePayload=payload:topicRulePayload:structure
SearchIndex POST /indices/search
SetDefaultAuthorizer POST /default-authorizer
SetDefaultPolicyVersion PATCH /policies/{policyName}/version/{policyVersionId} policyName=uri:policyName:string policyVersionId=uri:policyVersionId:string
SetLoggingOptions POST /loggingOptions loggingOptionsPayload=payload:loggingOptionsPayload:structure
SetV2LoggingLevel POST /v2LoggingLevel
SetV2LoggingOptions POST /v2LoggingOptions
StartAuditMitigationActionsTask POST /audit/mitigationactions/tasks/{taskId} taskId=uri:taskId:string
StartDetectMitigationActionsTask PUT /detect/mitigationactions/tasks/{taskId} taskId=uri:taskId:string
StartOnDemandAuditTask POST /audit/tasks
StartThingRegistrationTask POST /thing-registration-tasks
StopThingRegistrationTask PUT /thing-registration-tasks/{taskId}/cancel taskId=uri:taskId:string
TagResource POST /tags
TestAuthorization POST /test-authorization clientId=querystring:clientId:string
TestInvokeAuthorizer POST /authorizer/{authorizerName}/test authorizerName=uri:authorizerName:string
TransferCertificate PATCH /transfer-certificate/{certificateId} certificateId=uri:certificateId:string targetAwsAccount=querystring:targetAwsAccount:string
UntagResource POST /untag
UpdateAccountAuditConfiguration PATCH /audit/configuration
UpdateAuditSuppression PATCH /audit/suppressions/update
UpdateAuthorizer PUT /authorizer/{authorizerName} authorizerName=uri:authorizerName:string
UpdateBillingGroup PATCH /billing-groups/{billingGroupName} billingGroupName=uri:billingGroupName:string
UpdateCACertificate PUT /cacertificate/{caCertificateId} certificateId=uri:caCertificateId:string newStatus=querystring:newStatus:string newAutoRegistrationStatus=querystring:newAutoRegistrationStatus:string
UpdateCertificate PUT /certificates/{certificateId} certificateId=uri:certificateId:string newStatus=querystring:newStatus:string
UpdateCertificateProvider PUT /certificate-providers/{certificateProviderName} certificateProviderName=uri:certificateProviderName:string
UpdateCommand PATCH /commands/{commandId} commandId=uri:commandId:string
UpdateCustomMetric PATCH /custom-metric/{metricName} metricName=uri:metricName:string
UpdateDimension PATCH /dimensions/{name} name=uri:name:string
UpdateDomainConfiguration PUT /domainConfigurations/{domainConfigurationName} domainConfigurationName=uri:domainConfigurationName:string
UpdateDynamicThingGroup PATCH /dynamic-thing-groups/{thingGroupName} thingGroupName=uri:thingGroupName:string
UpdateEncryptionConfiguration PATCH /encryption-configuration
UpdateEventConfigurations PATCH /event-configurations
UpdateFleetMetric PATCH /fleet-metric/{metricName} metricName=uri:metricName:string
UpdateIndexingConfiguration POST /indexing/config
UpdateJob PATCH /jobs/{jobId} jobId=uri:jobId:string namespaceId=querystring:namespaceId:string
UpdateMitigationAction PATCH /mitigationactions/actions/{actionName} actionName=uri:actionName:string
UpdatePackage PATCH /packages/{packageName} packageName=uri:packageName:string clientToken=querystring:clientToken:string
UpdatePackageConfiguration PATCH /package-configuration clientToken=querystring:clientToken:string
UpdatePackageVersion PATCH /packages/{packageName}/versions/{versionName} packageName=uri:packageName:string versionName=uri:versionName:string clientToken=querystring:clientToken:string
UpdateProvisioningTemplate PATCH /provisioning-templates/{templateName} templateName=uri:templateName:string
UpdateRoleAlias PUT /role-aliases/{roleAlias} roleAlias=uri:roleAlias:string
UpdateScheduledAudit PATCH /audit/scheduledaudits/{scheduledAuditName} scheduledAuditName=uri:scheduledAuditName:string
UpdateSecurityProfile PATCH /security-profiles/{securityProfileName} securityProfileName=uri:securityProfileName:string expectedVersion=querystring:expectedVersion:long
UpdateStream PUT /streams/{streamId} streamId=uri:streamId:string
UpdateThing PATCH /things/{thingName} thingName=uri:thingName:string
UpdateThingGroup PATCH /thing-groups/{thingGroupName} thingGroupName=uri:thingGroupName:string
UpdateThingGroupsForThing PUT /thing-groups/updateThingGroupsForThing
UpdateThingType PATCH /thing-types/{thingTypeName} thingTypeName=uri:thingTypeName:string
UpdateTopicRuleDestination PATCH /destinations
ValidateSecurityProfileBehaviors POST /security-profile-behaviors/validate
"""
